"""facezoo.images.load_image: every accepted input form, and a clear error for each bad one."""
import io

import numpy as np
import pytest
from PIL import Image

from facezoo.images import ImageError, load_image


def _jpeg_bytes(w=20, h=16):
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _write(path, data):
    path.write_bytes(data)
    return str(path)


def test_accepted_forms_give_rgb_uint8(tmp_path):
    data = _jpeg_bytes()
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    gray = np.full((16, 20), 7, np.uint8)
    for item in (str(path), path, data, Image.open(io.BytesIO(data)), gray, gray[..., None],
                 np.zeros((16, 20, 4), np.uint8), np.ones((16, 20, 3), np.float32) * 0.5,
                 np.ones((16, 20, 3), np.float64) * 200.0):
        arr = load_image(item)
        assert arr.dtype == np.uint8 and arr.shape == (16, 20, 3), type(item)
    np.testing.assert_array_equal(load_image(np.ones((16, 20, 3), np.float32) * 0.5), 128)


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "missing.jpg"), "no such file"),
    (lambda p: str(p), "is a directory"),
    (lambda p: _write(p / "empty.jpg", b""), "empty"),
    (lambda p: _write(p / "text.jpg", b"hello"), "not an image"),
    (lambda p: _write(p / "cut.jpg", _jpeg_bytes(200, 200)[:300]), "truncated"),
    (lambda p: np.full((16, 16, 3), np.nan, np.float32), "NaN"),
    (lambda p: np.zeros((16, 16, 2), np.uint8), "shape"),
    (lambda p: np.zeros((4, 4, 3), np.uint8), "smaller"),
    (lambda p: np.full((16, 16, 3), 300.0), r"\[0, 1\] or \[0, 255\]"),
    (lambda p: np.zeros((16, 16, 3), np.complex64), "dtype"),
    (lambda p: 42, "unsupported input type"),
])
def test_bad_inputs_name_the_problem(tmp_path, make, message):
    with pytest.raises(ImageError, match=message):
        load_image(make(tmp_path))
