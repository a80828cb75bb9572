"""Generator metrics on synthetic data whose answers are known in closed form."""
import numpy as np
import pytest

from facezoo.errors import UsageError
from facezoo.evaluation import generation as G
from tests.helpers import tiny_model


def _rotation(d, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


# ----------------------------------------------------------------------------- Fréchet distance
def test_fd_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).standard_normal((300, 16))
    assert G.feature_frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_gaussians_matches_the_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(1)
    d = 6
    q = _rotation(d)
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = G.frechet_distance(mu_a, q @ np.diag(a) @ q.T, mu_b, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)
    # Symmetric in its two arguments.
    assert G.frechet_distance(mu_b, q @ np.diag(b) @ q.T, mu_a, q @ np.diag(a) @ q.T) == pytest.approx(expected)


def test_fd_of_a_shifted_set_is_the_squared_shift_even_for_singular_covariances():
    f = np.random.default_rng(2).standard_normal((5, 12))  # 5 samples in 12-d: rank-4 covariance
    shift = np.arange(12) / 10.0
    assert G.feature_frechet_distance(f, f + shift) == pytest.approx(float(np.sum(shift ** 2)), rel=1e-6)


def test_fd_grows_with_the_gap_between_distributions():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((400, 8))
    values = [G.feature_frechet_distance(base, rng.standard_normal((400, 8)) * s) for s in (1.0, 1.5, 3.0)]
    assert values[0] < values[1] < values[2]


def test_fd_needs_two_samples():
    with pytest.raises(UsageError, match="N >= 2"):
        G.gaussian_stats(np.zeros((1, 3)))


# ----------------------------------------------------------------------------- PSNR / SSIM
def test_psnr_of_a_known_error_and_of_identical_images():
    base = np.random.default_rng(0).integers(20, 230, (3, 16, 16, 3)).astype(np.uint8)
    for d in (1, 5, 20):
        signs = np.where(np.random.default_rng(d).random(base.shape) < 0.5, -d, d)
        noisy = (base.astype(int) + signs).astype(np.uint8)  # no clipping: pixels stay in 0..255
        np.testing.assert_allclose(G.psnr_rgb(noisy, base), 10 * np.log10(255 ** 2 / d ** 2), rtol=1e-12)
    assert np.all(np.isinf(G.psnr_rgb(base, base)))


def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    rng = np.random.default_rng(1)
    base = G.bicubic_upscale(rng.integers(0, 256, (2, 8, 8, 3)).astype(np.uint8), 4)  # smooth 32x32 images
    np.testing.assert_allclose(G.ssim_rgb(base, base), 1.0, atol=1e-6)
    scores = [G.ssim_rgb(np.clip(base + rng.normal(0, s, base.shape), 0, 255).astype(np.uint8), base).mean()
              for s in (2, 10, 40)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_metrics_reject_float_pixels_and_mismatched_shapes():
    a = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(UsageError, match="uint8"):
        G.psnr_rgb(a.astype(np.float32), a)
    with pytest.raises(UsageError, match="differ in shape"):
        G.ssim_rgb(a, np.zeros((1, 8, 4, 3), np.uint8))


def test_super_resolution_scores_of_bicubic_itself_gain_nothing_and_nearest_loses():
    rng = np.random.default_rng(2)
    hr = G.bicubic_upscale(rng.integers(0, 256, (4, 4, 4, 3)).astype(np.uint8), 4)  # smooth 16x16
    same = G.super_resolution_scores(lambda lr: G.bicubic_upscale(lr, 4), hr, 4, batch_size=3)
    assert same["n"] == 4 and same["psnr_gain_db"] == pytest.approx(0.0) and same["ssim_gain"] == pytest.approx(0.0)
    nearest = G.super_resolution_scores(lambda lr: np.repeat(np.repeat(lr, 4, 1), 4, 2), hr, 4)
    assert nearest["psnr_gain_db"] < 0
    with pytest.raises(UsageError, match="not divisible"):
        G.super_resolution_scores(lambda lr: lr, hr[:, :15, :15], 4)


# ----------------------------------------------------------------------------- framing and features
def test_to_model_framing_puts_the_square_in_the_middle_of_a_tall_input():
    square = np.random.default_rng(0).integers(0, 256, (2, 89, 89, 3)).astype(np.uint8)
    out = G.to_model_framing(square, (109, 89))
    assert out.shape == (2, 109, 89, 3)
    np.testing.assert_allclose(out[:, 10:99], square, atol=1e-3)  # same size: no resampling
    np.testing.assert_allclose(out[:, :10], out[:, 10:20][:, ::-1])  # the pad mirrors the edge rows


def test_trunk_features_take_the_pool_layer_and_fd_of_a_half_with_itself_is_zero():
    import keras
    keras.utils.set_random_seed(0)  # an untrained trunk: unseeded, noise vs real was a coin flip near the floor
    feats = G.TrunkFeatures(tiny_model(), batch_size=5)
    assert feats.layer == "trunk_pool" and feats.input_size == (40, 32)
    rng = np.random.default_rng(0)
    real = G.bicubic_upscale(rng.integers(0, 256, (12, 4, 4, 3)).astype(np.uint8), 8)  # 32x32 "faces"
    a, b = G.split_halves(len(real))
    assert len(set(a) | set(b)) == 12 and not set(a) & set(b)
    result = G.fd_facezoo(real[a], real, feats)
    assert result["fd_facezoo"] == pytest.approx(0.0, abs=1e-6)
    assert result["fd_real_floor"] > 0 and result["n_reference"] == result["n_floor"] == 6
    noise = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
    assert G.fd_facezoo(noise, real, feats)["fd_facezoo"] > result["fd_real_floor"]


def test_trunk_features_need_a_pooling_layer():
    import keras
    x = keras.Input((8, 8, 3))
    with pytest.raises(UsageError, match="no global pooling layer"):
        G.TrunkFeatures(keras.Model(x, keras.layers.Conv2D(2, 3)(x)))


# ----------------------------------------------------------------------------- attribute hit rates
class BrightWhenOn:
    """A generator double: the face is bright where condition 0 is on, dark otherwise."""
    latent_dim = 2

    def noise(self, n, rng):
        return rng.standard_normal((n, 2)).astype(np.float32)

    def generate(self, noise, condition):
        level = np.where(condition[:, 0] > 0.5, 200, 50).astype(np.uint8)
        return np.broadcast_to(level[:, None, None, None], (len(noise), 8, 8, 3)).copy()


class BrightnessRecogniser:
    """A recogniser double that sees every attribute in bright faces."""
    attributes = ["Male", "Smiling"]

    def present(self, images, attributes):
        return {a: images.reshape(len(images), -1).mean(axis=1) > 128 for a in attributes}


def test_hit_rates_count_recognised_requests_and_list_unrecognised_conditions():
    rates = G.attribute_hit_rates(BrightWhenOn(), ["Male", "Eyeglasses_unknown"], BrightnessRecogniser(), n=10,
                                  real_images=np.full((4, 8, 8, 3), 250, np.uint8),
                                  real_labels={"Male": np.array([1, 1, 0, 0])})
    assert rates["Male"]["hit_rate_on"] == 1.0 and rates["Male"]["hit_rate_off"] == 1.0
    assert rates["Male"]["real_recall"] == 1.0 and rates["Male"]["real_n"] == 2
    assert rates["not_recognised"] == ["Eyeglasses_unknown"]


def test_hit_rates_fall_when_the_generator_ignores_the_condition():
    class Ignores(BrightWhenOn):
        def generate(self, noise, condition):
            return super().generate(noise, np.ones_like(condition))  # always "on"
    rates = G.attribute_hit_rates(Ignores(), ["Male"], BrightnessRecogniser(), n=8)
    assert rates["Male"]["hit_rate_on"] == 1.0 and rates["Male"]["hit_rate_off"] == 0.0
    assert rates["Male"]["hit_rate"] == 0.5
