"""PreprocessSpec: validation, card round trip, grey models, and prepare_input = the pipeline's two halves."""
import numpy as np
import pytest
import tensorflow as tf

from facezoo.preprocessing import CELEBA_ALIGNED, FaceFraming, PreprocessSpec, fit_to_input, prepare_input


def test_spec_round_trips_through_a_card_dict():
    spec = PreprocessSpec((109, 89), framing=CELEBA_ALIGNED)
    again = PreprocessSpec.from_dict(spec.to_dict())
    assert again == spec and again.framing.name == "celeba_aligned"
    assert spec.input_shape == (109, 89, 3)
    assert PreprocessSpec.from_dict(PreprocessSpec((48, 48), color="grey").to_dict()).input_shape == (48, 48, 1)


@pytest.mark.parametrize("bad, message", [
    (dict(input_size=(0, 10)), "input_size"), (dict(input_size=(10, 10), color="cmyk"), "color"),
    (dict(input_size=(10, 10), resize="lanczos7"), "resize")])
def test_bad_specs_say_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        PreprocessSpec(**bad)
    with pytest.raises(ValueError, match="unknown keys"):
        PreprocessSpec.from_dict({"input_size": [8, 8], "mean": 0.5})
    with pytest.raises(ValueError, match="5 \\(x, y\\)"):
        FaceFraming("three", ((0, 0), (1, 1), (2, 2)))


def test_framing_records_how_faces_are_sampled_into_it():
    assert CELEBA_ALIGNED.interpolation == "bicubic"
    old_card = {k: v for k, v in CELEBA_ALIGNED.to_dict().items() if k != "interpolation"}
    assert FaceFraming.from_dict(old_card).interpolation == "bicubic"  # cards written before the field
    bilinear = FaceFraming("b", CELEBA_ALIGNED.landmarks, interpolation="bilinear")
    assert FaceFraming.from_dict(bilinear.to_dict()) == bilinear
    with pytest.raises(ValueError, match="interpolation"):
        FaceFraming("n", CELEBA_ALIGNED.landmarks, interpolation="nearest")


def test_framing_points_are_pixel_indices_of_the_input():
    pts = CELEBA_ALIGNED.points((109, 89))
    assert pts[0][0] < pts[1][0] and pts[0][1] == pytest.approx(pts[1][1])  # eyes level, left then right
    assert pts[2][1] < pts[3][1]  # nose above the mouth
    assert pts[0] == pytest.approx((0.3904 * 89 - 0.5, 0.5115 * 109 - 0.5))


def test_prepare_input_equals_fit_round_then_normalize():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (97, 61, 3), dtype=np.uint8)
    spec = PreprocessSpec((40, 32))
    expected = np.round(fit_to_input(image, (40, 32)).numpy()) / 127.5 - 1.0
    np.testing.assert_allclose(prepare_input(image, spec).numpy(), expected, atol=1e-6)
    assert prepare_input(image, spec).shape == (40, 32, 3)


def test_grey_spec_gives_one_luma_channel_and_custom_scaling():
    image = np.zeros((48, 48, 3), np.uint8)
    image[..., 0] = 255  # pure red
    spec = PreprocessSpec((48, 48), color="grey", scale=1 / 255.0, offset=0.0)
    out = prepare_input(tf.constant(image), spec).numpy()
    assert out.shape == (48, 48, 1)
    assert out.mean() == pytest.approx(0.2989, abs=1e-3)  # ITU-R 601 weight of red
