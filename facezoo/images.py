"""Reading images from whatever a user hands us, with errors that name the input and the problem.

Accepted: a file path (str or ``os.PathLike``), encoded bytes (JPEG/PNG/BMP/GIF/WebP), a numpy
array (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) of uint8 (0-255) or float (0-1 or 0-255), or a
PIL image. Everything becomes an RGB uint8 array.
"""
from __future__ import annotations

import io
import os

import numpy as np

from facezoo.errors import ImageError  # noqa: F401  (re-exported: callers catch it from here)

MAX_SIDE = 20000
MIN_SIDE = 8
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def describe(item) -> str:
    """A short name for an input, for error messages and results."""
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    if isinstance(item, (bytes, bytearray)):
        return f"<{len(item)} bytes>"
    if isinstance(item, np.ndarray):
        return f"<array {item.shape} {item.dtype}>"
    return f"<{type(item).__name__}>"


def _from_pil(img, name):
    from PIL import Image
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: image data is truncated or corrupt ({e})") from None
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if min(arr.shape[:2]) < MIN_SIDE or max(arr.shape[:2]) > MAX_SIDE:
        raise ImageError(f"{name}: image size {arr.shape[1]}x{arr.shape[0]} is outside "
                         f"{MIN_SIDE}..{MAX_SIDE} pixels per side")
    return arr


def _decode(data: bytes, name):
    from PIL import Image, UnidentifiedImageError
    if len(data) == 0:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image (unrecognised format; expected JPEG, PNG, BMP, GIF or WebP)") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: image is absurdly large ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: image data is truncated or corrupt ({e})") from None
    return _from_pil(img, name)


def _from_array(arr: np.ndarray, name):
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ImageError(f"{name}: expected an array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
                         f"got {arr.shape}")
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{name}: image {arr.shape[1]}x{arr.shape[0]} is smaller than {MIN_SIDE} pixels")
    if arr.dtype == np.uint8:
        out = arr
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ImageError(f"{name}: array contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 255:
            raise ImageError(f"{name}: float pixels must lie in [0, 1] or [0, 255]; got [{lo:.3g}, {hi:.3g}]")
        scale = 255.0 if hi <= 1.0 else 1.0
        out = np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        if arr.dtype != bool and (arr.min() < 0 or arr.max() > 255):
            raise ImageError(f"{name}: integer pixels must lie in [0, 255]; got [{arr.min()}, {arr.max()}]")
        out = arr.astype(np.uint8) * (255 if arr.dtype == bool else 1)
    else:
        raise ImageError(f"{name}: unsupported dtype {arr.dtype}; use uint8 or float")
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    elif out.shape[-1] == 4:
        out = out[..., :3]
    return np.ascontiguousarray(out)


def load_image(item) -> np.ndarray:
    """Returns ``item`` as an RGB uint8 array (H, W, 3), or raises ``ImageError``."""
    name = describe(item)
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if not os.path.exists(path):
            raise ImageError(f"{path}: no such file")
        if os.path.isdir(path):
            raise ImageError(f"{path}: is a directory, not an image")
        with open(path, "rb") as f:
            return _decode(f.read(), path)
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _decode(bytes(item), name)
    if isinstance(item, np.ndarray):
        return _from_array(item, name)
    try:
        from PIL import Image
        if isinstance(item, Image.Image):
            return _from_pil(item, name)
    except ImportError:  # pragma: no cover - pillow is a dependency
        pass
    raise ImageError(f"{name}: unsupported input type {type(item).__name__}; give a path, bytes, "
                     "a numpy array or a PIL image")
