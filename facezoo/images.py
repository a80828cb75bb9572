"""Reading images from whatever a user hands us, with errors that name the input and the problem.

``load_image`` is the one image reader of facezoo: ``FaceModel.predict``, the TFRecord converter and the
pipeline's folder mode (``from_records``) all call it, so one file gives the same pixels everywhere.

Accepted: a path to a regular file (str or ``os.PathLike``), encoded bytes (JPEG, PNG, BMP, GIF, TIFF,
WebP, ...), a numpy array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), or a PIL image. Everything becomes
an RGB uint8 array (H, W, 3); anything else raises ``ImageError`` with ``"<input>: <problem>"``.

The rules, in the order they apply:

* **Files** must be regular files (not a directory, pipe, socket or device: those are refused before they
  are opened, so nothing can hang) of at most ``max_bytes`` (``MAX_BYTES``, 64 MiB).
* **Size** comes from the header, before any pixel is decoded: each side must lie in
  ``MIN_SIDE..max_side`` (8..20000) and the image may hold at most ``max_pixels`` (``MAX_PIXELS``, 50 Mpx,
  150 MB as RGB). Arrays follow the same rule, so an array is accepted exactly when the file would be.
* **Working size**: an image whose longer side exceeds ``WORKING_SIDE`` (4096) is shrunk by the smallest
  integer factor that brings it within it (a box average; a JPEG is first decoded at 1/2, 1/4 or 1/8 scale by
  libjpeg), unless that would take the shorter side below ``MIN_SIDE``. The models take inputs of a few hundred
  pixels, so nothing they use is lost, and every conversion to float runs on at most 4096 x 4096 pixels.
* **Orientation**: the EXIF orientation tag is applied, so a photo stored sideways comes out upright.
* **Frames**: the first frame of an animated GIF/WebP or a multi-page TIFF.
* **Alpha** (RGBA, LA, PA, a palette or colour key with transparency, 4-channel arrays) is composited onto
  white: a cut-out face on white looks like a photograph, while dropping alpha would expose whatever colour the
  file stores under transparent pixels (often black).
* **Modes** 1, L, P, RGB, CMYK, YCbCr, LAB, HSV convert as PIL converts them. Grey images of more than 8 bits
  (modes I;16, I;16B, I) are scaled from ``[0, 2**bits - 1]`` to ``[0, 255]``, where ``bits`` is the bit depth
  the file states (TIFF BitsPerSample), else 16 for 16-bit modes and PNG, else 32; negative values are refused.
  Float images (mode F) follow the rule for float arrays. A transparent colour key on such images is ignored.
* **Arrays**: uint8 as is; uint16 scaled by 65535 like a 16-bit file; bool as 0/255; other integers must lie in
  [0, 255]; floats must be finite and lie in [0, 1] (scaled by 255) or [0, 255] (rounded).
"""
from __future__ import annotations

import io
import math
import os
import stat
import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facezoo.errors import ImageError  # also re-exported: callers catch it from here

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MIN_SIDE = 8
MAX_SIDE = 20000
MAX_PIXELS = 50_000_000
MAX_BYTES = 64 * 1024 * 1024
WORKING_SIDE = 4096

# What PIL's decoders raise on damaged data; each becomes an ImageError naming the input (as do MemoryError and
# Image.DecompressionBombError, with messages of their own).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError)
_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def describe(item) -> str:
    """A short name for an input, for error messages and results."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"<{len(item)} bytes>"
    if isinstance(item, np.ndarray):
        return f"<array {item.shape} {item.dtype}>"
    return f"<{type(item).__name__}>"


def _check_size(w: int, h: int, name: str, max_pixels: int, max_side: int):
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{name}: image {w}x{h} is smaller than {MIN_SIDE} pixels per side")
    if max(w, h) > max_side:
        raise ImageError(f"{name}: image {w}x{h} is larger than max_side={max_side} pixels per side")
    if w * h > max_pixels:
        raise ImageError(f"{name}: image {w}x{h} has {w * h} pixels, more than max_pixels={max_pixels}")


def _shrink_factor(w: int, h: int) -> int:
    """The integer factor that brings the longer side within ``WORKING_SIDE`` (1: keep the size)."""
    return max(1, min(math.ceil(max(w, h) / WORKING_SIDE), min(w, h) // MIN_SIDE))


def _full_scale(img) -> int:
    """``2**bits - 1`` for a grey image of more than 8 bits, with ``bits`` as the file states it."""
    bits = getattr(img, "tag_v2", {}).get(258)  # TIFF BitsPerSample
    if bits:
        bits = max(bits) if isinstance(bits, tuple) else int(bits)
    elif img.mode.startswith("I;16") or img.format == "PNG":
        bits = 16
    else:
        bits = 32
    return 2 ** bits - 1


def _normalised(img):
    """``img`` in one of the modes the rest works on: L, RGB, RGBA (8 bits), I (32-bit int) or F (float)."""
    if img.mode.startswith("I;16"):
        return img.convert("I")
    if img.mode in ("I", "F"):
        return img
    if img.has_transparency_data:
        return img.convert("RGBA")
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    try:
        return img.convert("RGB")
    except ValueError:
        raise ImageError(f"unsupported image mode {img.mode}") from None


def _to_uint8(arr: np.ndarray, name: str, full_scale: int | None) -> np.ndarray:
    """Pixels of any supported dtype as uint8 (see the module docstring for the rules)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * np.uint8(255)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ImageError(f"{name}: pixels contain NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"{name}: float pixels must lie in [0, 1] or [0, 255]; got [{lo:.3g}, {hi:.3g}]")
        scale = np.float32(255.0 if hi <= 1.0 else 1.0)
        return np.clip(np.round(arr.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if full_scale is None:
            if lo < 0 or hi > 255:
                raise ImageError(f"{name}: integer pixels must lie in [0, 255]; got [{lo}, {hi}]")
            return arr.astype(np.uint8)
        if lo < 0:
            raise ImageError(f"{name}: pixels must not be negative; got values down to {lo}")
        scaled = np.round(arr.astype(np.float32) * np.float32(255.0 / full_scale))
        return np.clip(scaled, 0, 255).astype(np.uint8)
    raise ImageError(f"{name}: unsupported dtype {arr.dtype}; use uint8, uint16 or float")


def _rgb(arr: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as contiguous RGB; alpha composited onto white."""
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.shape[-1] == 4:
        alpha = arr[..., 3:].astype(np.uint16)
        arr = ((arr[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def _from_pil(img, name: str, max_pixels: int, max_side: int, *, owned: bool) -> np.ndarray:
    """Decodes a PIL image (``owned``: opened here, so it may be changed in place) by the module's rules."""
    w, h = img.size
    _check_size(w, h, name, max_pixels, max_side)
    try:
        factor = _shrink_factor(w, h)
        if owned and factor > 1 and img.format == "JPEG":
            img.draft("RGB", (-(-w // factor), -(-h // factor)))
        img.load()
        full_scale = _full_scale(img)
        if owned:
            ImageOps.exif_transpose(img, in_place=True)
        else:
            img = ImageOps.exif_transpose(img)
        img = _normalised(img)
        factor = _shrink_factor(*img.size)
        if factor > 1:
            img = img.reduce(factor)
        arr = np.asarray(img)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from None
    except MemoryError:
        raise ImageError(f"{name}: not enough memory to decode this {w}x{h} image") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: image is absurdly large ({e})") from None
    except _DECODE_ERRORS as e:
        raise ImageError(f"{name}: image data is truncated or corrupt ({type(e).__name__}: {e})") from None
    return _rgb(_to_uint8(arr, name, full_scale if arr.dtype == np.int32 else None))


def _decode(data: bytes, name: str, max_pixels: int, max_side: int, max_bytes: int) -> np.ndarray:
    if len(data) == 0:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(f"{name}: {len(data)} bytes is more than max_bytes={max_bytes}")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unrecognised format; expected JPEG, PNG, BMP, GIF, TIFF or "
                         "WebP)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: image is absurdly large ({e})") from None
    except (*_DECODE_ERRORS, MemoryError) as e:
        raise ImageError(f"{name}: image data is truncated or corrupt ({type(e).__name__}: {e})") from None
    with img:
        return _from_pil(img, name, max_pixels, max_side, owned=True)


def read_image_file(path, *, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; anything else raises ``ImageError`` naming ``path``.

    The type is checked with ``stat`` before the file is opened (opening a device can have effects, reading a
    pipe can block), and again on the open descriptor in case the path was replaced in between.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
        for is_kind, kind in _FILE_KINDS:
            if is_kind(st.st_mode):
                raise ImageError(f"{path}: is {kind}, not an image file")
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"{path}: is not a regular file")
        if st.st_size > max_bytes:
            raise ImageError(f"{path}: file is {st.st_size} bytes, more than max_bytes={max_bytes}")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ImageError(f"{path}: is not a regular file")
            data = f.read(max_bytes + 1)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    except ValueError as e:  # os.stat refuses a path with a NUL byte
        raise ImageError(f"{path!r}: not a usable file name ({e})") from None
    if len(data) > max_bytes:
        raise ImageError(f"{path}: file grew past max_bytes={max_bytes} while being read")
    return data


def _from_array(arr: np.ndarray, name: str, max_pixels: int, max_side: int) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ImageError(f"{name}: expected an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                         f"got {arr.shape}")
    h, w = arr.shape[:2]
    _check_size(w, h, name, max_pixels, max_side)
    out = _to_uint8(arr, name, 65535 if arr.dtype == np.uint16 else None)
    factor = _shrink_factor(w, h)
    if factor > 1:
        out = np.asarray(Image.fromarray(out[..., 0] if out.shape[-1] == 1 else out).reduce(factor))
    return _rgb(out)


def load_image(item, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES, max_side: int = MAX_SIDE,
               name: str | None = None) -> np.ndarray:
    """Reads ``item`` as an RGB uint8 array by the rules of the module docstring.

    Args:
        item: a path (str or ``os.PathLike``), encoded bytes, a numpy array or a PIL image.
        max_pixels: the most pixels an image may have (checked on the header, before decoding).
        max_bytes: the largest file or byte string accepted (checked before reading).
        max_side: the longest side accepted, in pixels.
        name: what error messages call the input (default ``describe(item)``; e.g. the path of bytes read
            with ``read_image_file``).

    Returns:
        A contiguous uint8 array (H, W, 3), at most ``WORKING_SIDE`` pixels on the longer side.

    Raises:
        ImageError: ``"<input>: <problem>"`` for anything that is not a readable image within the limits.
    """
    name = describe(item) if name is None else name
    if isinstance(item, (str, os.PathLike)):
        return _decode(read_image_file(item, max_bytes=max_bytes), name, max_pixels, max_side, max_bytes)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _decode(bytes(item), name, max_pixels, max_side, max_bytes)
    if isinstance(item, np.ndarray):
        return _from_array(item, name, max_pixels, max_side)
    if isinstance(item, Image.Image):
        return _from_pil(item, name, max_pixels, max_side, owned=False)
    raise ImageError(f"{name}: unsupported input type {type(item).__name__}; give a path, bytes, "
                     "a numpy array or a PIL image")


def upright_size(data: bytes, *, name: str | None = None) -> tuple[int, int]:
    """``(width, height)`` of the picture in ``data`` as ``load_image`` turns it, before any shrinking.

    That is the header's size, with the sides swapped when the EXIF orientation turns the picture by 90 degrees.
    Reads the header only. Callers that hold coordinates in the full-size picture (face landmarks) use it to scale
    them to the array ``load_image`` returned.
    """
    name = describe(data) if name is None else name
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            turned = img.getexif().get(0x0112) in (5, 6, 7, 8)
    except (UnidentifiedImageError, Image.DecompressionBombError, *_DECODE_ERRORS) as e:
        raise ImageError(f"{name}: cannot read the image header ({type(e).__name__}: {e})") from None
    return (h, w) if turned else (w, h)
