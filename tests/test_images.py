"""facezoo.images.load_image: every accepted input form and mode, and a clear, fast error for each bad one."""
import io
import os
import re
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from facezoo.images import MAX_PIXELS, MIN_SIDE, ImageError, load_image, read_image_file, upright_size
from tests import corpus


def _write(path, data):
    path.write_bytes(data)
    return str(path)


def _jpeg_pixels(w, h):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)


def _jpeg(w=20, h=16):
    return corpus.encode(_jpeg_pixels(w, h), "JPEG")


def test_accepted_forms_give_rgb_uint8(tmp_path):
    data = _jpeg()
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    gray = np.full((16, 20), 7, np.uint8)
    for item in (str(path), path, data, bytearray(data), memoryview(data), Image.open(io.BytesIO(data)), gray,
                 gray[..., None], np.zeros((16, 20, 4), np.uint8), np.ones((16, 20, 3), np.float32) * 0.5,
                 np.ones((16, 20, 3), np.float64) * 200.0, np.ones((16, 20), bool), np.full((16, 20), 3, np.int64)):
        arr = load_image(item)
        assert arr.dtype == np.uint8 and arr.shape == (16, 20, 3) and arr.flags.c_contiguous, type(item)
    np.testing.assert_array_equal(load_image(np.ones((16, 20, 3), np.float32) * 0.5), 128)
    np.testing.assert_array_equal(load_image(np.ones((16, 20), bool)), 255)
    np.testing.assert_array_equal(load_image(np.full((16, 20), 65535, np.uint16)), 255)


def _grey(a):
    return np.repeat(np.asarray(a)[..., None], 3, axis=-1)


def _white_stripe(a):
    a = a.copy()
    a[:, :4] = 255
    return a


_RGB = corpus.pattern()
# mode -> (lossless format, the expected RGB pixels given the PIL image, largest difference allowed)
_EXPECTED = {
    "1": ("PNG", lambda img: _grey(img.convert("L")), 0),
    "L": ("PNG", _grey, 0),
    "LA": ("PNG", lambda img: _white_stripe(_grey(img.convert("L"))), 0),
    "P": ("PNG", lambda img: np.asarray(img.convert("RGB")), 0),
    "RGB": ("PNG", lambda img: _RGB, 0),
    "RGBA": ("PNG", lambda img: _white_stripe(_RGB), 0),
    "CMYK": ("TIFF", lambda img: _RGB, 0),
    "YCbCr": ("TIFF", lambda img: _RGB, 3),
    "I;16": ("PNG", lambda img: _grey(_RGB[..., 0]), 0),
    "I;16B": ("TIFF", lambda img: _grey(_RGB[..., 0]), 0),
    "I": ("TIFF", lambda img: np.zeros_like(_RGB), 1),  # 32 bits: the 16-bit values are all but black
    "F": ("TIFF", lambda img: _grey(_RGB[..., 0]), 0),
}


@pytest.mark.parametrize("mode", list(_EXPECTED))
def test_every_mode_gives_the_pattern(mode):
    """Each mode, from a file and as a PIL image, reads back as the pattern it was made from."""
    img = corpus.mode_images()[mode]
    assert img.mode == mode
    fmt, expected, tolerance = _EXPECTED[mode]
    for item in (corpus.encode(img, fmt), img):
        out = load_image(item)
        assert out.shape == (16, 24, 3) and out.dtype == np.uint8, (mode, type(item))
        assert np.abs(out.astype(int) - expected(img)).max() <= tolerance, (mode, type(item))


def test_sixteen_bit_grey_is_scaled_by_its_bit_depth():
    """A 16-bit image of mid grey reads as mid grey, not clipped to white nor divided down to black."""
    mid = np.full((16, 16), 32768, np.uint16)
    for fmt in ("PNG", "TIFF"):
        np.testing.assert_array_equal(load_image(corpus.encode(mid, fmt)), 128)
    low = np.full((16, 16), 257 * 10, np.uint16)
    np.testing.assert_array_equal(load_image(corpus.encode(low, "PNG")), 10)
    signed = Image.fromarray(np.full((16, 16), -5, np.int32))
    with pytest.raises(ImageError, match="must not be negative"):
        load_image(signed)


def test_float_images_follow_the_float_array_rule():
    for values, expected in ((0.5, 128), (200.0, 200)):
        img = Image.fromarray(np.full((16, 16), values, np.float32))
        np.testing.assert_array_equal(load_image(corpus.encode(img, "TIFF")), expected)
    for bad, message in ((np.nan, "NaN"), (-1.0, r"\[0, 1\] or \[0, 255\]"), (300.0, r"\[0, 1\] or \[0, 255\]")):
        with pytest.raises(ImageError, match=message):
            load_image(corpus.encode(Image.fromarray(np.full((16, 16), bad, np.float32)), "TIFF"))


def test_palette_transparency_and_first_frame():
    out = load_image(corpus.palette_with_transparency())
    np.testing.assert_array_equal(out[:, :4], 255)
    np.testing.assert_array_equal(out[:, 4:], np.broadcast_to([200, 30, 30], out[:, 4:].shape))
    np.testing.assert_array_equal(load_image(corpus.animated_gif()), np.broadcast_to([255, 0, 0], (16, 16, 3)))
    np.testing.assert_array_equal(load_image(corpus.multipage_tiff()), np.broadcast_to([0, 255, 0], (16, 16, 3)))


@pytest.mark.parametrize("orientation", range(2, 9))
def test_exif_orientation_gives_the_upright_picture(orientation):
    upright = corpus.pattern(24, 16)
    stored = corpus.with_orientation(upright, orientation)
    np.testing.assert_array_equal(load_image(stored), upright)
    np.testing.assert_array_equal(load_image(Image.open(io.BytesIO(stored))), upright)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_of_a_jpeg(orientation):
    upright = np.kron(corpus.pattern(6, 4), np.ones((8, 8, 1), np.uint8))  # 8x8 blocks: rotation is lossless
    reference = load_image(corpus.encode(upright, "JPEG", quality=95))
    rotated = load_image(corpus.with_orientation(upright, orientation, "JPEG", quality=95))
    assert rotated.shape == reference.shape == (32, 48, 3)
    assert np.abs(rotated.astype(int) - reference).mean() < 2


def test_large_images_are_shrunk_to_the_working_size():
    # 5000x40: one factor-2 box average; the shorter side stays above MIN_SIDE.
    wide = np.tile(np.array([[0, 255]], np.uint8), (40, 2500))
    out = load_image(corpus.encode(wide, "PNG"))
    assert out.shape == (20, 2500, 3) and np.all(out == 128)
    # Too thin to shrink: 5000x8 keeps its size rather than losing rows.
    assert load_image(corpus.encode(np.zeros((MIN_SIDE, 5000), np.uint8), "PNG")).shape == (MIN_SIDE, 5000, 3)
    # A big JPEG is decoded in reduced mode: 8200x40 -> 4100x20 by libjpeg -> 2050x10 by reduce.
    assert load_image(corpus.encode(np.zeros((40, 8200, 3), np.uint8), "JPEG")).shape == (10, 2050, 3)
    assert load_image(np.zeros((16, 8200, 3), np.float32)).shape == (8, 4100, 3)


@pytest.mark.parametrize("make, message", [
    (lambda p: str(p / "missing.jpg"), "no such file"),
    (lambda p: str(p), "is a directory"),
    (lambda p: "/dev/zero", "is a character device"),
    (lambda p: _write(p / "empty.jpg", b""), "empty"),
    (lambda p: _write(p / "text.jpg", b"hello, this is text"), "not an image"),
    (lambda p: _write(p / "cut.jpg", _jpeg(200, 200)[:300]), "truncated"),
    (lambda p: _write(p / "cut.png", corpus.encode(_jpeg_pixels(64, 64), "PNG")[:3000]), "truncated"),
    (lambda p: _write(p / "cut2.png", corpus.encode(corpus.pattern(64, 64), "PNG")[:-40]), "truncated"),
    (lambda p: _jpeg(200, 200)[:-200], "truncated"),
    (lambda p: b"\x89PNG\r\n\x1a\n", "not an image"),
    (lambda p: corpus.grey_png(13000, 13000, rows=1), f"more than max_pixels={MAX_PIXELS}"),
    (lambda p: corpus.grey_png(30000, 8, rows=1), "larger than max_side=20000"),
    (lambda p: corpus.grey_png(100_000, 100_000, rows=1), "absurdly large|more than max_pixels"),
    (lambda p: corpus.encode(np.zeros((4, 30, 3), np.uint8), "PNG"), "30x4 is smaller than 8"),
    (lambda p: np.full((16, 16, 3), np.nan, np.float32), "NaN"),
    (lambda p: np.full((16, 16, 3), np.inf), "NaN or infinite"),
    (lambda p: np.zeros((16, 16, 2), np.uint8), "shape"),
    (lambda p: np.zeros((2, 16, 16, 3), np.uint8), "shape"),
    (lambda p: np.zeros((4, 4, 3), np.uint8), "smaller"),
    (lambda p: np.zeros((8, 20001), np.uint8), "larger than max_side"),
    (lambda p: np.full((16, 16, 3), 300.0), r"\[0, 1\] or \[0, 255\]"),
    (lambda p: np.full((16, 16, 3), -3, np.int16), r"integer pixels must lie in \[0, 255\]"),
    (lambda p: np.zeros((16, 16, 3), np.complex64), "dtype"),
    (lambda p: 42, "unsupported input type"),
])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL warns above 89 Mpx; we refuse
def test_bad_inputs_name_the_problem(tmp_path, make, message):
    item = make(tmp_path)
    with pytest.raises(ImageError, match=message) as caught:
        load_image(item)
    if isinstance(item, str):
        assert str(caught.value).startswith(f"{item}: ")


def test_limits_are_arguments(tmp_path):
    data = corpus.encode(corpus.pattern(24, 16), "PNG")
    with pytest.raises(ImageError, match="more than max_bytes=10"):
        load_image(data, max_bytes=10)
    with pytest.raises(ImageError, match=r"more than max_bytes=10"):
        load_image(_write(tmp_path / "a.png", data), max_bytes=10)
    with pytest.raises(ImageError, match="more than max_pixels=100"):
        load_image(data, max_pixels=100)
    with pytest.raises(ImageError, match="larger than max_side=20"):
        load_image(np.zeros((16, 24), np.uint8), max_side=20)


def _run_with_timeout(code: str, timeout: float = 20.0, memory: int | None = None) -> str:
    """Runs ``code`` in a fresh interpreter (under an address-space limit of ``memory`` bytes); returns stdout."""
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n" if memory else ""
    proc = subprocess.run([sys.executable, "-c", limit + textwrap.dedent(code)], capture_output=True, text=True,
                          check=False, timeout=timeout, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_special_files_error_fast(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.jpg"
    os.symlink(loop, loop)
    sock_path = tmp_path / "s.jpg"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        out = _run_with_timeout(f"""
            from facezoo.images import ImageError, load_image
            for path in ({str(fifo)!r}, {str(loop)!r}, {str(sock_path)!r}):
                try:
                    load_image(path)
                except ImageError as e:
                    print(e)
            """, timeout=30)
    finally:
        sock.close()
    lines = out.splitlines()
    assert lines[0] == f"{fifo}: is a named pipe, not an image file"
    assert lines[1].startswith(f"{loop}: cannot read (Too many levels of symbolic links")
    assert lines[2] == f"{sock_path}: is a socket, not an image file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.jpg"
    path.write_bytes(_jpeg())
    path.chmod(0)
    with pytest.raises(ImageError, match=r"cannot read \(Permission denied"):
        load_image(path)


def test_huge_images_stay_within_memory(tmp_path):
    """Under a 2 GiB address-space limit: refused before decoding when over the pixel cap, and shrunk before any
    float conversion when under it (a 7000x7000 16-bit grey PNG decodes in a few hundred MB)."""
    over = _write(tmp_path / "over.png", corpus.grey_png(13000, 13000))
    under = _write(tmp_path / "under.png", corpus.grey_png(7000, 7000, bits=16))
    out = _run_with_timeout(f"""
        import warnings
        warnings.simplefilter("ignore")
        from facezoo.images import ImageError, load_image
        try:
            load_image({over!r})
        except ImageError as e:
            print(e)
        print(load_image({under!r}).shape)
        """, timeout=60, memory=2 * 1024 ** 3)
    assert out.splitlines() == [f"{over}: image 13000x13000 has 169000000 pixels, more than max_pixels={MAX_PIXELS}",
                                "(3500, 3500, 3)"]


def test_read_image_file_name_and_upright_size(tmp_path):
    data = corpus.with_orientation(corpus.pattern(24, 16), 6)
    path = _write(tmp_path / "turned.png", data)
    assert read_image_file(path) == data
    with pytest.raises(ImageError, match=f"^{re.escape(str(tmp_path))}: is a directory"):
        read_image_file(tmp_path)
    assert upright_size(data) == (24, 16)  # stored 16x24, shown 24x16
    assert upright_size(corpus.encode(corpus.pattern(24, 16), "PNG")) == (24, 16)
    with pytest.raises(ImageError, match=r"^photo\.jpg: not an image"):
        load_image(b"text", name="photo.jpg")
    with pytest.raises(ImageError, match=r"^photo\.jpg: cannot read the image header"):
        upright_size(b"text", name="photo.jpg")
