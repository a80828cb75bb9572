"""Action-unit attention head: centre placement, attention maps, crops, loss, metrics, training, saving."""
import numpy as np
import pytest

import keras

from facezoo.attributes import BP4D_AUS, DISFA_AUS
from facezoo.errors import UsageError
from facezoo.models import au, resnet18
from facezoo.preprocessing import CELEBA_ALIGNED

# A frontal, upright face in a 64x64 image: eye axis along +x, so u = (1, 0), v = (0, 1), d = 24.
FACE = np.array([[20, 22], [44, 22], [32, 34], [23, 46], [41, 46]], np.float32)


def expected_centres(landmarks, aus):
    """The module docstring's rule, written out for an upright face (u = +x, v = +y)."""
    d = landmarks[1, 0] - landmarks[0, 0]
    points = {"eyes": (landmarks[0], landmarks[1]), "mouth": (landmarks[3], landmarks[4]),
              "nose": (landmarks[2], landmarks[2]),
              "mouth_centre": ((landmarks[3] + landmarks[4]) / 2,) * 2}
    out = []
    for a in aus:
        anchor, inward, down = au.AU_REGIONS[a]
        left, right = points[anchor]
        sign = 1 if anchor in ("eyes", "mouth") else -1            # midline anchors spread apart
        out.append([left + d * np.array([sign * inward, down]), right + d * np.array([-sign * inward, down])])
    return np.array(out, np.float32)


def centres_of(landmarks, aus=BP4D_AUS):
    centres, scale = au.AuCentres(aus)(np.asarray(landmarks, np.float32)[None])
    return np.asarray(centres)[0], float(np.asarray(scale)[0, 0])


def test_every_documented_au_has_a_region_and_datasets_are_covered():
    assert set(BP4D_AUS) | set(DISFA_AUS) <= set(au.AU_REGIONS)
    for a in au.AU_REGIONS:
        assert f"| {a} |" in au.__doc__                          # the table documents every AU placed


def test_centres_follow_the_documented_table():
    aus = tuple(sorted(au.AU_REGIONS))
    centres, scale = centres_of(FACE, aus)
    assert scale == pytest.approx(24.0, abs=1e-3)
    np.testing.assert_allclose(centres, expected_centres(FACE, aus), atol=1e-3)
    by_au = dict(zip(aus, centres))
    np.testing.assert_allclose(by_au[12], FACE[3:5], atol=1e-4)   # lip corner puller: at the corners
    assert by_au[1][0, 1] < FACE[0, 1] and by_au[17][0, 1] > FACE[3, 1]   # brows above eyes, chin below mouth
    assert by_au[1][0, 0] > FACE[0, 0] and by_au[1][1, 0] < FACE[1, 0]   # inner brows: towards the midline


@pytest.mark.parametrize("angle, scale, shift", [(25.0, 1.3, (5.0, -3.0)), (-40.0, 0.6, (0.0, 10.0))])
def test_centres_turn_and_scale_with_the_face(angle, scale, shift):
    t = np.deg2rad(angle)
    similarity = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]], np.float32)
    move = lambda p: p @ similarity.T + np.array(shift, np.float32)  # noqa: E731
    centres, d = centres_of(FACE)
    moved, moved_d = centres_of(move(FACE))
    np.testing.assert_allclose(moved, move(centres), atol=1e-3)
    assert moved_d == pytest.approx(scale * d, rel=1e-4)


def attention(landmarks, aus, feature_size, image_size=(64, 64), **kwargs):
    centres, scale = au.AuCentres(aus)(np.asarray(landmarks, np.float32)[None])
    features = np.zeros((1, *feature_size, 1), np.float32)
    return np.asarray(au.LandmarkAttention(image_size, **kwargs)([features, centres, scale]))[0]


@pytest.mark.parametrize("decay", ["linear", "gaussian"])
def test_attention_peaks_at_the_expected_landmark_offsets(decay):
    aus = (1, 2, 6, 9, 12, 17, 26)
    maps = attention(FACE, aus, (64, 64), radius=0.6, decay=decay)           # one cell per pixel
    centres = expected_centres(FACE, aus)
    assert maps.shape == (64, 64, len(aus))
    for k, a in enumerate(aus):
        m = maps[..., k]
        for side, (lo, hi) in enumerate(((0, 32), (32, 64))):   # each half of the face holds one centre
            half = m[:, lo:hi]
            y, x = np.unravel_index(np.argmax(half), half.shape)
            cx, cy = centres[k, side]
            assert abs(x + lo - cx) <= 0.5 + 1e-4 and abs(y - cy) <= 0.5 + 1e-4, (a, side, (x + lo, y), (cx, cy))
            assert half.max() > 0.95
        ys, xs = np.mgrid[0:64, 0:64]
        dist = np.min([np.hypot(xs - cx, ys - cy) for cx, cy in centres[k]], axis=0)
        order = np.argsort(dist.ravel())
        assert np.all(np.diff(m.ravel()[order]) <= 1e-5)       # weights never grow with distance
        if decay == "linear":
            assert np.all(m[dist >= 0.6 * 24 + 1e-3] == 0)       # and vanish at the radius


def test_attention_on_a_strided_feature_map_peaks_in_the_cell_holding_the_centre():
    maps = attention(FACE, (12, 1), (16, 16))              # stride 4: cell j spans pixel positions 4j-0.5..4j+3.5
    for k, a in enumerate((12, 1)):
        for cx, cy in expected_centres(FACE, (a,))[0]:
            y, x = np.unravel_index(np.argmax(maps[..., k] * _near(cx, cy)), (16, 16))
            assert (x, y) == (int((cx + 0.5) // 4), int((cy + 0.5) // 4))


def _near(cx, cy):
    """Mask of the 16x16 cells within 2 cells of a pixel position (to look at one centre at a time)."""
    ys, xs = np.mgrid[0:16, 0:16]
    return (np.abs(xs * 4 + 1.5 - cx) <= 8) & (np.abs(ys * 4 + 1.5 - cy) <= 8)


def test_crops_sample_the_enhanced_features_bilinearly():
    aus = (12, 10)
    centres, scale = au.AuCentres(aus)(FACE[None])
    h = w = 16                                                      # stride 4
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    features = np.stack([xs, ys], -1)[None]                         # channel 0: cell column, 1: cell row
    zero = np.zeros((1, h, w, len(aus)), np.float32)
    crops = np.asarray(au.RegionCrop((64, 64), size=3, extent=0.5)([features, zero, centres, scale]))
    assert crops.shape == (1, 2, 2, 3, 3, 2)
    c = np.asarray(centres)[0]
    step = 0.5 * 24 / 2                                             # pixels between samples
    for k in range(2):
        for side in range(2):
            for i in range(3):
                for j in range(3):
                    px, py = c[k, side, 0] + (j - 1) * step, c[k, side, 1] + (i - 1) * step
                    np.testing.assert_allclose(crops[0, k, side, i, j], [(px + 0.5) / 4 - 0.5, (py + 0.5) / 4 - 0.5],
                                               atol=1e-4)
    # Enhancement: with attention a, the crop is of features * (1 + a).
    half = np.full((1, h, w, len(aus)), 0.5, np.float32)
    enhanced = np.asarray(au.RegionCrop((64, 64), size=3, extent=0.5)([features, half, centres, scale]))
    np.testing.assert_allclose(enhanced, 1.5 * crops, rtol=1e-5)
    # Outside the map is zero: AU17's lowest samples (row 15.325 of 0-15) keep only cell 15's share.
    centres, scale = au.AuCentres((17,))(FACE[None])
    low = np.asarray(au.RegionCrop((64, 64), size=3, extent=0.5)([features, zero[..., :1], centres, scale]))
    row = (np.asarray(centres)[0, 0, 0, 1] + step + 0.5) / 4 - 0.5
    assert row > 15
    np.testing.assert_allclose(low[0, 0, :, 2, :, 1], (1 - (row - 15)) * 15, rtol=1e-4)


def test_attention_pooling_weights_the_enhanced_features():
    features = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype(np.float32)
    maps = np.random.default_rng(1).uniform(size=(2, 5, 6, 4)).astype(np.float32)
    pooled = np.asarray(au.AttentionPooling()([features, maps]))
    want = np.einsum("bhwk,bhwc->bkc", maps * (1 + maps), features) / maps.sum((1, 2))[..., None]
    np.testing.assert_allclose(pooled, want, rtol=1e-4, atol=1e-5)


# Synthetic task: an AU is "on" when a bright blob sits at its two landmark-anchored centres.
TASK_AUS = (2, 12, 17)
CANONICAL = np.array([[15, 18], [33, 18], [24, 27], [17, 36], [31, 36]], np.float32)   # in 48x48


def blob_faces(n, seed, size=48):
    rng = np.random.default_rng(seed)
    angle, scale = np.deg2rad(rng.uniform(-12, 12, n)), rng.uniform(0.85, 1.1, n)
    c, s = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2) * scale[:, None, None]
    middle = np.array([24, 27], np.float32)
    landmarks = (np.einsum("nij,lj->nli", rot, CANONICAL - middle) + middle
                 + rng.uniform(-8, 8, (n, 1, 2))).astype(np.float32)
    labels = rng.integers(0, 2, (n, len(TASK_AUS)))
    centres = np.asarray(au.AuCentres(TASK_AUS)(landmarks)[0])
    yy, xx = np.mgrid[0:size, 0:size]
    images = rng.normal(0, 0.15, (n, size, size)).astype(np.float32)
    for i, k in zip(*np.nonzero(labels)):
        for cx, cy in centres[i, k]:
            images[i] += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.5 ** 2))
    return {"image": np.repeat(images[..., None], 3, -1), "landmarks": landmarks}, labels.astype(np.float32)


def tiny_au_model(region="crop", aus=TASK_AUS, **kwargs):
    return au.au_attention_model("resnet18", input_shape=(48, 48, 3), trunk_kwargs={"width": 0.125},
                                 feature_layer="conv2_block2_out", aus=aus, region=region, units=16, **kwargs)


@pytest.mark.parametrize("region", ["crop", "pool"])
def test_tiny_model_learns_blobs_at_landmark_anchored_places(region):
    keras.utils.set_random_seed(0)
    model = tiny_au_model(region)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=au.AuBinaryCrossentropy(),
                  metrics=au.au_metrics(TASK_AUS, per_au=False))
    x, y = blob_faces(256, seed=1)
    xv, yv = blob_faces(192, seed=2)
    before = model.evaluate(xv, yv, verbose=0, return_dict=True)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)                # 32 steps
    after = model.evaluate(xv, yv, verbose=0, return_dict=True)
    assert after["loss"] < 0.5 * before["loss"]
    assert after["mean_accuracy"] > 0.85 and after["mean_f1"] > 0.8, after
    report = au.au_report(yv, model.predict(xv, verbose=0), TASK_AUS)
    assert all(report[f"AU{a}"]["accuracy"] > 0.7 for a in TASK_AUS), report
    assert report["mean_accuracy"] == pytest.approx(after["mean_accuracy"], abs=1e-4)
    # The head reads the landmarks: another face's landmarks make it clearly worse.
    swapped = {"image": xv["image"], "landmarks": np.roll(xv["landmarks"], 1, axis=0)}
    assert model.evaluate(swapped, yv, verbose=0, return_dict=True)["mean_accuracy"] < after["mean_accuracy"] - 0.08


@pytest.mark.parametrize("region, activation", [("crop", "sigmoid"), ("pool", None)])
def test_keras_file_round_trip(tmp_path, region, activation):
    model = tiny_au_model(region, aus=BP4D_AUS, activation=activation, dropout=0.1, decay="gaussian")
    x, _ = blob_faces(3, seed=3)
    model.compile(optimizer="adam", loss=au.AuBinaryCrossentropy(*au.au_class_weights(np.eye(12)[:, :12]),
                                                                from_logits=activation is None),
                  metrics=au.au_metrics(BP4D_AUS, from_logits=activation is None))
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "au.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.output_shape == (None, 12)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert loaded.loss.get_config() == model.loss.get_config()
    assert loaded.get_layer("au_centres").aus == BP4D_AUS


def test_custom_regions_survive_serialization():
    layer = au.AuCentres((12, 1), regions={12: ("mouth", 0.1, 0.0), 1: ("eyes", 0.0, -1.0)})
    again = au.AuCentres.from_config(layer.get_config())
    np.testing.assert_allclose(np.asarray(again(FACE[None])[0]), np.asarray(layer(FACE[None])[0]))
    np.testing.assert_allclose(np.asarray(layer(FACE[None])[0])[0, 1], FACE[:2] + [0, -24], atol=1e-3)  # AU1


def test_weighted_loss_by_hand_and_unknown_labels_masked():
    p = np.array([[0.9, 0.2, 0.6], [0.3, 0.7, 0.5]], np.float32)
    y = np.array([[1, 0, -1], [0, 1, 1]], np.float32)
    pos, w = np.array([2.0, 3.0, 4.0]), np.array([1.0, 0.5, 2.0])
    loss = au.AuBinaryCrossentropy(pos, w, reduction=None)
    got = np.asarray(loss(y, p))
    elem = -(pos * np.clip(y, 0, 1) * np.log(p) + (1 - np.clip(y, 0, 1)) * np.log(1 - p)) * w
    known = y >= 0
    np.testing.assert_allclose(got, (elem * known).sum(1) / known.sum(1), rtol=1e-5)
    logits = np.log(p / (1 - p))
    np.testing.assert_allclose(np.asarray(au.AuBinaryCrossentropy(pos, w, from_logits=True, reduction=None)(y, logits)),
                               got, rtol=1e-4)
    changed = p.copy()
    changed[0, 2] = 0.01                                           # an unknown AU's prediction is ignored
    np.testing.assert_allclose(np.asarray(loss(y, changed)), got)
    assert float(np.asarray(au.AuBinaryCrossentropy(reduction=None)(-np.ones((1, 3)), p[:1]))[0]) == 0.0


def test_class_weights_balance_rare_aus():
    labels = np.array([[1, 0], [0, 0], [0, 1], [0, 1], [-1, 1]])
    pos, w = au.au_class_weights(labels)
    np.testing.assert_allclose(pos, [3 / 1, 2 / 3], rtol=1e-6)          # negatives / positives per AU
    rates = np.array([1 / 4, 3 / 5])                                    # the unknown (-1) is not counted
    np.testing.assert_allclose(w, (1 / rates) / np.mean(1 / rates), rtol=1e-6)
    assert w[0] > w[1]
    with pytest.raises(UsageError, match="must be 0, 1 or -1"):
        au.au_class_weights([[0, 9]])


def test_metrics_match_the_numpy_report_with_unknowns():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (50, 4)).astype(np.float32)
    y[rng.uniform(size=y.shape) < 0.2] = -1
    p = np.clip(0.35 * y + rng.uniform(0, 0.7, y.shape), 0, 1).astype(np.float32)
    aus = (1, 2, 4, 6)
    report = au.au_report(y, p, aus)
    for k, a in enumerate(aus):
        known = y[:, k] >= 0
        t, q = y[known, k] == 1, p[known, k] > 0.5
        tp, fp, fn = np.sum(t & q), np.sum(~t & q), np.sum(t & ~q)
        precision, recall = tp / (tp + fp), tp / (tp + fn)
        assert report[f"AU{a}"]["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
        assert report[f"AU{a}"]["accuracy"] == pytest.approx(np.mean(t == q))
        assert report[f"AU{a}"]["n"] == known.sum()
    metrics = {m.name: m for m in au.au_metrics(aus)}
    for m in metrics.values():
        for chunk in range(0, 50, 16):                             # several batches accumulate
            m.update_state(y[chunk:chunk + 16], p[chunk:chunk + 16])
    assert float(metrics["mean_f1"].result()) == pytest.approx(report["mean_f1"], abs=1e-5)
    assert float(metrics["mean_accuracy"].result()) == pytest.approx(report["mean_accuracy"], abs=1e-5)
    assert float(metrics["f1_AU4"].result()) == pytest.approx(report["AU4"]["f1"], abs=1e-5)
    assert float(metrics["accuracy_AU6"].result()) == pytest.approx(report["AU6"]["accuracy"], abs=1e-5)
    logit = au.AuF1(4, from_logits=True)
    logit.update_state(y, np.log(p + 1e-6) - np.log(1 - p + 1e-6))
    assert float(logit.result()) == pytest.approx(report["mean_f1"], abs=1e-5)


def test_targets_from_reader_records():
    from facezoo.data.records import FaceRecord
    records = [FaceRecord("a.jpg", {"AU1": 1, "AU12": 0}), FaceRecord("b.jpg", {"AU4": 1}), FaceRecord("c.jpg", {})]
    np.testing.assert_array_equal(au.au_targets(records, (1, 4, 12)), [[1, -1, 0], [-1, 1, -1], [-1, -1, -1]])
    assert au.au_targets([], (1, 4)).shape == (0, 2)


def test_framing_landmarks_feed_the_head():
    points = au.framing_landmarks(CELEBA_ALIGNED, (109, 89))
    assert points.shape == (5, 2) and points[0, 0] < points[1, 0] and points[3, 1] > points[2, 1] > points[0, 1]
    centres, d = centres_of(points)
    assert d == pytest.approx(points[1, 0] - points[0, 0], rel=1e-4)


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(UsageError, match=r"no region for action unit\(s\) \[3\]"):
        au.AuCentres((1, 3))
    with pytest.raises(UsageError, match="repeats"):
        au.AuCentres((1, 1))
    with pytest.raises(UsageError, match="decay must be one of"):
        au.LandmarkAttention((48, 48), decay="cosine")
    with pytest.raises(UsageError, match="region must be one of"):
        tiny_au_model("roi")
    with pytest.raises(UsageError, match="unknown trunk"):
        au.au_attention_model("resnet19")
    with pytest.raises(UsageError, match="has no layer 'conv9'"):
        au.au_attention_model("resnet18", input_shape=(48, 48, 3), trunk_kwargs={"width": 0.125},
                              feature_layer="conv9")
    with pytest.raises(UsageError, match="4-D feature map"):
        au.au_attention_model(resnet18(input_shape=(32, 32, 3), width=0.125, include_top=False, pooling="avg"))
    with pytest.raises(UsageError, match="must both be"):
        au.au_report(np.zeros((3, 2)), np.zeros((3, 3)), (1, 2))
