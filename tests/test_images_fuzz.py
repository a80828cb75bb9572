"""Fuzzing ``load_image``: whatever it is given, it returns an RGB uint8 image or raises ``ImageError``."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from facezoo.images import ImageError, load_image
from tests import corpus

_SEEDS = [corpus.encode(corpus.pattern(), fmt) for fmt in ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")] + [
    corpus.encode(np.full((16, 16), 40000, np.uint16), "PNG"), corpus.with_orientation(corpus.pattern(), 6, "JPEG"),
    corpus.palette_with_transparency(), corpus.animated_gif()]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")  # PIL on damaged TIFF tags
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(item):
    try:
        out = load_image(item)
    except ImageError:
        return
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 3 and out.shape[-1] == 3


@st.composite
def _damaged(draw):
    """A valid encoding with some bytes overwritten and maybe cut short."""
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[:draw(st.integers(0, len(data)))])


@_SETTINGS
@given(st.binary(max_size=512))
def test_random_bytes(data):
    _check(data)


@_SETTINGS
@given(_damaged())
def test_damaged_files(data):
    _check(data)


@_SETTINGS
@given(hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64, bool]),
                  hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=24)))
def test_random_arrays(arr):
    _check(arr)
