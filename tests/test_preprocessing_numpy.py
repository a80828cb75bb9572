"""The numpy preprocessing of the exported-graph backends reproduces the TensorFlow functions."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from facezoo.preprocessing import (  # noqa: E402
    PreprocessSpec, fit_to_input, fit_to_input_numpy, normalize_numpy, prepare_input, prepare_input_numpy,
    resize_numpy)


@pytest.mark.parametrize("shape,size,antialias", [((250, 250), (109, 89), True), ((60, 50), (109, 89), True),
                                                  ((300, 200), (64, 64), True), ((41, 33), (64, 64), True),
                                                  ((100, 80), (55, 45), False), ((30, 20), (64, 64), False)])
def test_resize_matches_tf_image_resize(shape, size, antialias):
    image = np.random.default_rng(0).uniform(0, 255, (*shape, 3)).astype(np.float32)
    want = tf.image.resize(image, size, antialias=antialias).numpy()
    got = resize_numpy(image, size, antialias=antialias)
    assert got.shape == want.shape
    # antialiased: the same float32 sums in another order; plain bilinear: TF's kernel rounds its weights
    np.testing.assert_allclose(got, want, atol=1e-3 if antialias else 5e-3)


def test_fit_to_input_crops_like_tensorflow():
    image = np.random.default_rng(1).integers(0, 256, (173, 301, 3)).astype(np.uint8)
    want = fit_to_input(image, (109, 89)).numpy()
    got = fit_to_input_numpy(image, (109, 89))
    np.testing.assert_allclose(got, want, atol=1e-3)
    exact = np.random.default_rng(2).integers(0, 256, (109, 89, 3)).astype(np.uint8)
    np.testing.assert_array_equal(fit_to_input_numpy(exact, (109, 89)), exact.astype(np.float32))


@pytest.mark.parametrize("color", ["rgb", "grey"])
def test_prepare_input_gives_the_same_grey_levels_but_for_rounding_ties(color):
    spec = PreprocessSpec((64, 64), color=color)
    rng = np.random.default_rng(3)
    step = spec.scale
    changed, total = 0, 0
    for _ in range(10):
        image = rng.integers(0, 256, (int(rng.integers(40, 300)), int(rng.integers(40, 300)), 3)).astype(np.uint8)
        want, got = prepare_input(image, spec).numpy(), prepare_input_numpy(image, spec)
        assert got.shape == want.shape == (64, 64, spec.channels) and got.dtype == np.float32
        diff = np.abs(got - want)
        assert diff.max() <= step * 1.01  # at most one grey level, where the resized value sits on a .5 tie
        changed += int((diff > 1e-5).sum())
        total += diff.size
    assert changed / total < 1e-3


def test_normalize_matches_spec_normalize():
    crops = np.random.default_rng(4).integers(0, 256, (3, 8, 9, 3)).astype(np.uint8)
    for color in ("rgb", "grey"):
        spec = PreprocessSpec((8, 9), color=color)
        np.testing.assert_allclose(normalize_numpy(crops, spec), spec.normalize(crops).numpy(), atol=1e-5)


def test_unimplemented_resize_method_is_refused():
    with pytest.raises(ValueError, match="bicubic"):
        resize_numpy(np.zeros((10, 10, 3)), (5, 5), method="bicubic")
