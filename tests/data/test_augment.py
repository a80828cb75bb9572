"""Augmentations move landmarks exactly as they move pixels."""
import numpy as np
import tensorflow as tf

import pytest

from facezoo.data.augment import (DEFAULT_AUGMENT, color_jitter, gaussian_blur, grid_mask, make_augment,
                                  motion_blur, random_affine, random_flip, unsharp)

LANDMARKS = np.array([[12, 14], [27, 13], [20, 22], [14, 30], [26, 31]], np.float32)


def _dot_image(point, size=(40, 44)):
    """Black (h, w) image with a bright 3x3 blob centred on integer ``point`` (x, y)."""
    image = np.zeros((size[0], size[1], 3), np.uint8)
    x, y = int(point[0]), int(point[1])
    image[y - 1:y + 2, x - 1:x + 2] = 255
    return image


def _centroid(image):
    weight = image[..., 0].astype(np.float64)
    weight = np.where(weight > 60, weight, 0)
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


def test_flip_mirrors_and_swaps_points_and_labels():
    image = _dot_image(LANDMARKS[0])
    labels = {"left_eye_closed": tf.constant(1), "right_eye_closed": tf.constant(0), "smile": tf.constant(1)}
    out, lm, lab = random_flip(image, LANDMARKS, labels, probability=1.0,
                               label_pairs={"left_eye_closed": "right_eye_closed"}, seed=[1, 2])
    lm = lm.numpy()
    # The dot that marked the image-left eye is now on the image-right side: landmark index 1.
    np.testing.assert_allclose(_centroid(out.numpy()), lm[1], atol=1e-6)
    np.testing.assert_allclose(lm[0], [44 - 1 - 27, 13])
    np.testing.assert_allclose(lm[[3, 4]], [[44 - 1 - 26, 31], [44 - 1 - 14, 30]])
    assert {k: int(v) for k, v in lab.items()} == {"left_eye_closed": 0, "right_eye_closed": 1, "smile": 1}
    same, lm0, _ = random_flip(image, LANDMARKS, probability=0.0, seed=[1, 2])
    np.testing.assert_array_equal(same.numpy(), image)
    np.testing.assert_array_equal(lm0.numpy(), LANDMARKS)


def test_affine_moves_dot_with_landmark():
    for i, seed in enumerate([[0, 1], [5, 9], [7, 3]]):
        point = LANDMARKS[i + 1]
        image = _dot_image(point)
        out, lm = random_affine(image, LANDMARKS, rotation=25.0, translate=0.1, scale=(0.8, 1.2),
                                fill_mode="constant", seed=seed)
        assert out.shape == image.shape and out.dtype == tf.float32
        np.testing.assert_allclose(_centroid(out.numpy()), lm.numpy()[i + 1], atol=0.35)
        assert np.abs(lm.numpy() - LANDMARKS).max() > 0.5


def test_color_jitter_and_augmenter_in_dataset():
    image = np.random.default_rng(0).integers(0, 256, (20, 18, 3), dtype=np.uint8)
    out = color_jitter(image, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1, seed=[3, 4]).numpy()
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 255
    assert not np.allclose(out, image)
    augment = make_augment()
    assert augment.config == {k: dict(v) for k, v in DEFAULT_AUGMENT.items()}
    ds = tf.data.Dataset.from_tensors(image).repeat(3).map(
        lambda x: augment(x, tf.constant(LANDMARKS))[:2])
    for x, lm in ds:
        assert x.shape == (20, 18, 3) and x.dtype == tf.float32 and lm.shape == (5, 2)
    a = augment(image, seed=tf.constant([1, 2]))[0].numpy()
    np.testing.assert_array_equal(a, augment(image, seed=tf.constant([1, 2]))[0].numpy())


def test_grid_mask_keeps_requested_ratio():
    image = np.full((112, 112, 3), 200, np.uint8)
    kept = [np.mean(grid_mask(image, keep_ratio=0.6, seed=[i, 7]).numpy()[..., 0] > 0) for i in range(40)]
    assert abs(np.mean(kept) - 0.6) < 0.05
    assert min(kept) < max(kept)  # random unit size and offset


def test_blurs_and_sharpening_keep_shape_and_mean():
    image = np.random.default_rng(1).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    for op in (gaussian_blur, motion_blur, unsharp):
        out = op(image, seed=[2, 3]).numpy()
        assert out.shape == image.shape and 0 <= out.min() and out.max() <= 255
        assert not np.allclose(out, image)
        assert abs(out.mean() - image.mean()) < 6
    smooth = gaussian_blur(image, sigma=(1.0, 1.5), seed=[2, 3]).numpy()
    assert smooth.std() < image.std()


def test_augmenter_all_ops_and_grid_schedule():
    config = {**DEFAULT_AUGMENT, "gaussian_blur": {"probability": 0.5}, "motion_blur": {"probability": 0.5},
              "unsharp": {"probability": 0.5},
              "grid_mask": {"probability": 0.6, "final_probability": 0.8, "schedule_steps": 100}}
    augment = make_augment(config)
    assert list(augment.config) == ["flip", "affine", "color", "gaussian_blur", "motion_blur", "unsharp", "grid_mask"]
    assert np.isclose(augment.grid_mask_probability.numpy(), 0.6)
    augment.set_step(50)
    assert np.isclose(augment.grid_mask_probability.numpy(), 0.7)
    augment.set_step(1000)
    assert np.isclose(augment.grid_mask_probability.numpy(), 0.8)
    image = np.full((32, 32, 3), 150, np.uint8)
    out, lm, _ = augment(image, LANDMARKS * 0.5, seed=tf.constant([4, 5]))
    assert out.shape == (32, 32, 3) and lm.shape == (5, 2)
    with pytest.raises(ValueError, match="unknown ops"):
        make_augment({"cutout": {}})
    with pytest.raises(ValueError, match="has no option"):
        make_augment({"flip": {"p": 0.5}})
