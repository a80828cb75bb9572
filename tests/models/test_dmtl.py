"""DMTL model: structure, config round-trip, .keras round-trip, decoding of every head kind."""
import numpy as np
import pytest

import keras

from facezoo import attributes as A
from facezoo.models import heads
from facezoo.models.dmtl import Dmtl, DmtlConfig, HeadSpec, confidence_name, dmtl, output_name, select_dataset
from tests.helpers import random_images, tiny_config, tiny_model


def test_outputs_cover_every_head_and_confidence():
    model = tiny_model()
    out = model(random_images(2))
    for attr in A.CELEBA_40:
        name = output_name("celeba", attr.name)
        assert out[name].shape == (2, 1)
        assert out[confidence_name(name)].shape == (2, 1)
    assert out["utkface__age"].shape == (2, A.MAX_AGE)          # K-1 CORAL logits
    assert out["utkface__gender"].shape == (2, 2)
    assert out["utkface__race"].shape == (2, len(A.UTKFACE_RACES))
    assert len(out) == 2 * (40 + 3)


def test_category_branches_follow_holistic_local_and_nominal_ordinal():
    names = {layer.name for layer in tiny_model().layers}
    assert {"celeba_holistic_nominal_fc", "celeba_local_nominal_fc", "utkface_holistic_nominal_fc",
            "utkface_holistic_ordinal_fc", "celeba_local_nominal_reduce"} <= names
    assert "celeba_holistic_ordinal_fc" not in names  # no CelebA ordinal attributes


def test_single_dataset_heads_form_and_no_self_evaluation():
    cfg = DmtlConfig(backbone="resnet18", input_size=48, width=0.125, heads=A.UTKFACE, self_evaluation=False,
                     branch_units=8)
    out = dmtl(cfg)(random_images(1, (48, 48)))
    assert set(out) == {"utkface__age", "utkface__gender", "utkface__race"}


def test_config_round_trip():
    cfg = tiny_config()
    again = DmtlConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert Dmtl.from_config(tiny_model().get_config()).dmtl_config == cfg


def test_keras_file_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model()
    x = random_images(3)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    a, b = model(x, training=False), loaded(x, training=False)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6)
    assert isinstance(loaded, Dmtl) and loaded.dmtl_config == model.dmtl_config


def test_select_dataset_keeps_one_branch():
    cfg = select_dataset(tiny_config(), ["utkface"])
    assert [d.name for d in cfg.datasets] == ["utkface"]
    with pytest.raises(ValueError, match="not in"):
        select_dataset(tiny_config(), ["lfw"])


def test_one_branch_extracted_from_a_joint_model_gives_the_joint_outputs():
    from facezoo.models.weights import transfer_weights
    joint = tiny_model()
    x = random_images(2)
    joint_out = joint(x, training=False)
    single = dmtl(select_dataset(joint.dmtl_config, ["utkface"]))
    report = transfer_weights(joint, single, require_all=True)
    assert len(report["copied"]) == len(single.weights) and not report["missing"]
    out = single(x, training=False)
    assert set(out) == {k for k in joint_out if k.startswith("utkface__")}
    for k in out:
        np.testing.assert_allclose(out[k], joint_out[k], atol=1e-5)


def test_warm_start_copies_shared_weights_and_leaves_new_branch(tmp_path):
    from facezoo.models.weights import transfer_weights
    one = dmtl(select_dataset(tiny_config(), ["celeba"]))
    path = tmp_path / "celeba.keras"
    one.save(path)
    joint = tiny_model()
    report = transfer_weights(path, joint)
    assert report["missing"] and all(p.startswith("utkface") for p in report["missing"])
    trunk = [w for w in joint.weights if not w.path.startswith(("celeba", "utkface"))]
    assert trunk and all(w.path in report["copied"] for w in trunk)
    src = {w.path: w for w in one.weights}
    for w in trunk:
        np.testing.assert_array_equal(np.asarray(w), np.asarray(src[w.path]))
    with pytest.raises(ValueError, match="missing from the source"):
        transfer_weights(path, tiny_model(), require_all=True)


def test_warm_start_renames_a_data_set_and_turns_an_rgb_stem_grey():
    """``datasets={"face": "fer"}`` fills data set fer's branch and head from face's; the RGB stem becomes the grey
    one that answers a grey image as the RGB model answers it with three equal channels."""
    from facezoo.models.weights import transfer_weights
    expression = [A.FER2013["expression"]]
    rgb = tiny_model(datasets={"face": [A.UTKFACE["gender"]] + expression})
    grey = tiny_model(datasets={"fer": expression}, channels=1)
    plain = transfer_weights(rgb, grey)
    assert all(p.startswith("fer") for p in plain["missing"]) and plain["missing"]
    report = transfer_weights(rgb, grey, datasets={"face": "fer"}, require_all=True)
    assert len(report["copied"]) == len(grey.weights) and len(report["adapted"]) == 1
    y = random_images(2)[..., :1]
    want = rgb(np.repeat(y, 3, axis=-1), training=False)
    got = grey(y, training=False)
    for key in ("expression", "expression_conf"):
        np.testing.assert_allclose(got[f"fer__{key}"], want[f"face__{key}"], atol=1e-4)


def test_warm_start_refuses_an_unrelated_model():
    from facezoo.models.weights import transfer_weights
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="zz")])
    with pytest.raises(ValueError, match="no weight"):
        transfer_weights(other, tiny_model())


@pytest.mark.parametrize("kwargs, message", [
    (dict(heads=A.CELEBA_40, datasets={"x": A.UTKFACE}), "exactly one"),
    (dict(), "exactly one"),
    (dict(heads=A.CELEBA_40, backbone="resnet7"), "unknown backbone"),
    (dict(heads=A.CELEBA_40, input_size=16), "sides >= 32"),
    (dict(datasets={"a__b": A.UTKFACE}), "may not contain"),
    (dict(heads=A.CELEBA_40, dropout=1.0), "dropout"),
    (dict(heads=[]), "at least one head"),
])
def test_bad_configs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DmtlConfig(**kwargs)


def test_ordinal_layer_shares_one_weight_vector():
    layer = heads.OrdinalLogits(5)
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    z = np.asarray(layer(x))
    assert z.shape == (4, 4)
    # Differences between thresholds do not depend on the input: one shared projection, K-1 biases.
    diffs = z[:, 1:] - z[:, :-1]
    np.testing.assert_allclose(diffs, np.broadcast_to(diffs[0], diffs.shape), atol=1e-5)


def test_coral_decoding_class_and_expected_value():
    attr = A.Attribute("level", "ordinal", "holistic", classes=("a", "b", "c", "d"), values=(0.0, 10.0, 20.0, 30.0))
    # P(y>0)=0.9, P(y>1)=0.6, P(y>2)=0.1 -> class probabilities 0.1, 0.3, 0.5, 0.1; rank 2.
    s = np.array([[0.9, 0.6, 0.1]])
    dec = heads.decode_head(attr, np.log(s / (1 - s)))
    np.testing.assert_allclose(dec["probabilities"], [[0.1, 0.3, 0.5, 0.1]], atol=1e-9)
    assert dec["index"][0] == 2
    np.testing.assert_allclose(dec["value"], [0 * 0.1 + 10 * 0.3 + 20 * 0.5 + 30 * 0.1])


def test_coral_expected_years_equals_sum_of_exceedance_probabilities():
    rng = np.random.default_rng(1)
    logits = np.sort(rng.normal(size=(3, A.MAX_AGE)), axis=1)[:, ::-1] * 3
    dec = heads.decode_head(A.AGE_YEARS, logits)
    s = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(dec["value"], s.sum(1), rtol=1e-9)


def test_unordered_ordinal_probabilities_are_clipped_and_normalised():
    p = heads.ordinal_class_probabilities(np.array([[-2.0, 3.0]]))
    assert (p >= 0).all() and np.isclose(p.sum(), 1.0)


def test_binary_and_nominal_decoding():
    b = heads.decode_head(A.CELEBA_40["Male"], np.array([[2.0], [-1.0]]))
    np.testing.assert_array_equal(b["index"], [1, 0])
    np.testing.assert_allclose(b["positive"], 1 / (1 + np.exp([-2.0, 1.0])))
    n = heads.decode_head(A.UTKFACE["race"], np.array([[0, 5, 1, 0, 0.0]]))
    assert n["index"][0] == 1 and np.isclose(n["probabilities"].sum(), 1.0)


def test_head_spec_and_dataset_weights_serialise():
    spec = HeadSpec(A.UTKFACE["age"], weight=3.0, tolerance=5)
    assert HeadSpec.from_dict(spec.to_dict()) == spec
