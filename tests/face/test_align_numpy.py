"""align_to_spec(engine="numpy") (the exported backends' alignment) gives TensorFlow's crops."""
import numpy as np
import pytest

pytest.importorskip("tensorflow")

import facezoo  # noqa: E402
from facezoo.face.align import align_to_spec  # noqa: E402
from facezoo.images import load_image  # noqa: E402


@pytest.mark.parametrize("name", ["dmtl_celeba", "dmtl_utkface", "expression_fer"])
def test_numpy_alignment_equals_tensorflow(name):
    spec = facezoo.model_card(name).spec
    image = load_image(facezoo.sample_photo())
    rng = np.random.default_rng(0)
    base = np.array([[-0.3, -0.2], [0.3, -0.2], [0.0, 0.1], [-0.25, 0.35], [0.25, 0.35]])
    changed = 0
    for side in (12, 40, 90, 150, 400):  # shrinking (several scale steps) and enlarging faces
        angle = rng.uniform(-0.5, 0.5)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        landmarks = base @ rotation.T * side + rng.uniform(20, 480, 2)  # some faces cross the image edge
        want = align_to_spec(image, landmarks, spec).astype(int)
        got = align_to_spec(image, landmarks, spec, engine="numpy")
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
