"""Similarity transform and 5-point alignment."""
import numpy as np
import pytest

from facezoo.attributes import CELEBA_40
from facezoo.face.align import align_face, fit_landmarks, similarity_transform, template_points
from facezoo.data.records import FaceRecord
from facezoo.data.tfrecord import convert


def test_similarity_recovers_known_transform():
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    angle, scale, shift = 0.4, 1.7, np.array([5.0, -3.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(src, src @ rotation.T + shift).numpy()
    np.testing.assert_allclose(matrix[:, :2], rotation, atol=1e-5)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-3)


def test_align_face_puts_landmarks_on_template():
    template = template_points((48, 40))
    assert np.allclose(template[:, 0].mean(), 19.5, atol=0.5)  # face centred in the width
    angle = 0.3
    rotation = 1.4 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = template @ rotation.T + [20, 10]
    image = np.zeros((90, 90, 3), np.uint8)
    x, y = np.round(landmarks[2]).astype(int)
    image[y - 2:y + 3, x - 2:x + 3] = 255
    aligned, moved = align_face(image, landmarks, (48, 40))
    assert aligned.shape == (48, 40, 3)
    np.testing.assert_allclose(moved.numpy(), template, atol=1e-3)
    w = aligned.numpy()[..., 0]
    ys, xs = np.nonzero(w > 50)
    centre = np.array([(xs * w[ys, xs]).sum(), (ys * w[ys, xs]).sum()]) / w[ys, xs].sum()
    np.testing.assert_allclose(centre, template[2] + (np.array([x, y]) - landmarks[2]) / 1.4, atol=0.5)


def test_fit_landmarks_identity_at_same_size():
    points = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(fit_landmarks(points, (10, 10), (10, 10)), points)


def test_convert_align_needs_landmarks(tmp_path, write_jpeg):
    write_jpeg(tmp_path / "a.jpg", size=(40, 40))
    bare = FaceRecord(str(tmp_path / "a.jpg"), {"Male": 1}, source="a.jpg")
    with pytest.raises(ValueError, match="has no landmarks"):
        convert([bare], CELEBA_40, tmp_path / "o", image_size=(16, 16), align=True, progress=False)
    with pytest.raises(ValueError, match="needs image_size"):
        convert([bare], CELEBA_40, tmp_path / "o", align=True, progress=False)
    marked = FaceRecord(bare.image, bare.labels, landmarks=template_points((40, 40)), source="a.jpg")
    manifest = convert([marked], CELEBA_40, tmp_path / "o", image_size=(16, 16), align=True, progress=False)
    assert manifest["aligned"] is True and manifest["image_size"] == [16, 16]
