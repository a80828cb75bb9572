"""align_to_spec(engine="numpy") (the exported backends' alignment) gives TensorFlow's crops."""
import numpy as np
import pytest

pytest.importorskip("tensorflow")

import facezoo  # noqa: E402
from facezoo.face.align import align_to_spec  # noqa: E402
from facezoo.images import load_image  # noqa: E402


@pytest.mark.parametrize("name, interpolation", [("dmtl_celeba", "bicubic"), ("dmtl_utkface", "bicubic"),
                                                 ("expression_fer", "bicubic"), ("dmtl_celeba", "bilinear")])
def test_numpy_alignment_equals_tensorflow(name, interpolation):
    spec = facezoo.model_card(name).spec
    image = load_image(facezoo.sample_photo())
    rng = np.random.default_rng(0)
    base = np.array([[-0.3, -0.2], [0.3, -0.2], [0.0, 0.1], [-0.25, 0.35], [0.25, 0.35]])
    changed = 0
    for side in (12, 40, 90, 150, 400):  # shrinking (several scale steps) and enlarging faces
        angle = rng.uniform(-0.5, 0.5)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        landmarks = base @ rotation.T * side + rng.uniform(20, 480, 2)  # some faces cross the image edge
        want = align_to_spec(image, landmarks, spec, interpolation=interpolation).astype(int)
        got = align_to_spec(image, landmarks, spec, engine="numpy", interpolation=interpolation)
        assert got.dtype == np.uint8 and got.shape == want.shape == (*spec.input_size, 3)
        diff = np.abs(got.astype(int) - want)
        assert diff.max() <= 1
        changed += int((diff > 0).sum())
    assert changed <= 20  # of 5 x ~29k values: only rounding ties differ


def test_numpy_engine_refuses_other_fill_modes():
    spec = facezoo.model_card("dmtl_celeba").spec
    with pytest.raises(ValueError, match="nearest"):
        align_to_spec(np.zeros((50, 50, 3), np.uint8), np.random.rand(5, 2) * 40, spec, fill_mode="constant",
                      engine="numpy")


@pytest.mark.parametrize("engine", ["tensorflow", "numpy"])
def test_bicubic_keeps_an_aligned_face_and_loses_less_to_a_half_pixel_shift(engine):
    spec = facezoo.model_card("dmtl_celeba").spec
    h, w = spec.input_size
    image = load_image(facezoo.sample_photo())[:h, :w]
    target = np.asarray(spec.framing.points((h, w)))
    for interpolation in ("bicubic", "bilinear"):  # landmarks already on the framing: the image itself
        np.testing.assert_array_equal(
            align_to_spec(image, target, spec, engine=engine, interpolation=interpolation), image)
    errors = {}
    for interpolation in ("bicubic", "bilinear"):
        there = align_to_spec(image, target + 0.5, spec, engine=engine, interpolation=interpolation)
        back = align_to_spec(there, target - 0.5, spec, engine=engine, interpolation=interpolation)
        diff = back[2:-2, 2:-2].astype(int) - image[2:-2, 2:-2]
        # Each warp truncates to 8 bits as Pillow does (about -0.5 a pixel): the blur is what is left.
        assert -1.2 < diff.mean() < -0.5
        errors[interpolation] = np.abs(diff - diff.mean()).mean()
    assert errors["bicubic"] < 0.8 * errors["bilinear"], errors
    with pytest.raises(ValueError, match="interpolation"):
        align_to_spec(image, target, spec, engine=engine, interpolation="lanczos")


def test_alignment_follows_the_framing_on_the_card():
    import dataclasses
    spec = facezoo.model_card("dmtl_celeba").spec
    image = load_image(facezoo.sample_photo())
    landmarks = np.asarray(spec.framing.points(spec.input_size)) * 1.3 + 40.3  # rendered at 2x, then downscaled
    bilinear = dataclasses.replace(spec, framing=dataclasses.replace(spec.framing, interpolation="bilinear"))
    for engine in ("tensorflow", "numpy"):
        np.testing.assert_array_equal(align_to_spec(image, landmarks, bilinear, engine=engine),
                                      align_to_spec(image, landmarks, spec, engine=engine, interpolation="bilinear"))
        assert not np.array_equal(align_to_spec(image, landmarks, bilinear, engine=engine),
                                  align_to_spec(image, landmarks, spec, engine=engine))
    # Faces rendered at 4x or more are downscaled with antialiasing: bilinear there, whatever the framing says.
    large = np.asarray(spec.framing.points(spec.input_size)) * 2.3 + 40.3
    np.testing.assert_array_equal(align_to_spec(image, large, spec, engine="numpy"),
                                  align_to_spec(image, large, bilinear, engine="numpy"))
    # verify_face was re-trained on bicubic crops (the aligned_crops default) and thresholded on them; its card says so.
    assert facezoo.model_card("verify_face").spec.framing.interpolation == "bicubic"
