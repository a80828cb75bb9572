"""A small image corpus generated at test time: every PIL mode, EXIF rotations, damaged and hostile files.

Nothing here is committed data: each function builds its bytes from a numpy pattern in a few milliseconds.
"""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

# EXIF orientation -> how the stored pixels relate to the upright picture (np.rot90 turns counter-clockwise).
STORED_FOR_ORIENTATION = {
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}


def pattern(w: int = 24, h: int = 16) -> np.ndarray:
    """An RGB uint8 (h, w, 3) picture with no symmetry, so every rotation and flip of it differs."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x * 7 + y * 13) % 256], -1)
    out[:3, :3] = (255, 0, 0)
    return out.astype(np.uint8)


def encode(image, fmt: str, **kwargs) -> bytes:
    """``image`` (a PIL image or an array) saved as ``fmt`` to bytes."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def with_orientation(upright: np.ndarray, orientation: int, fmt: str = "PNG", **kwargs) -> bytes:
    """``upright`` stored turned as a camera would store it, with EXIF ``orientation`` saying how to turn it back."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(np.ascontiguousarray(STORED_FOR_ORIENTATION[orientation](upright)), fmt, exif=exif, **kwargs)


def mode_images() -> dict[str, Image.Image]:
    """One small PIL image per mode a file can decode to, from the same pattern."""
    rgb = pattern()
    grey16 = (rgb[..., 0].astype(np.uint16) * 257)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :4, 3] = 0  # a transparent stripe on the left
    base = Image.fromarray(rgb)
    return {
        "1": base.convert("1"), "L": base.convert("L"), "LA": Image.fromarray(rgba).convert("LA"),
        "P": base.convert("P"), "RGB": base, "RGBA": Image.fromarray(rgba), "CMYK": base.convert("CMYK"),
        "YCbCr": base.convert("YCbCr"), "I;16": Image.fromarray(grey16),
        "I;16B": Image.fromarray(grey16.astype(">u2")), "I": Image.fromarray(grey16.astype(np.int32)),
        "F": Image.fromarray(rgb[..., 0].astype(np.float32) / 255),
    }


def palette_with_transparency() -> bytes:
    """A GIF whose palette index 0 is transparent (the left 4 columns)."""
    index = np.full((16, 24), 1, np.uint8)
    index[:, :4] = 0
    img = Image.fromarray(index, "P")
    img.putpalette([0, 0, 0, 200, 30, 30] + [0] * (254 * 3))
    return encode(img, "GIF", transparency=0)


def animated_gif() -> bytes:
    """Two frames: red, then blue."""
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def multipage_tiff() -> bytes:
    """Two pages: green, then black."""
    pages = [Image.new("RGB", (16, 16), c) for c in ((0, 255, 0), (0, 0, 0))]
    buf = io.BytesIO()
    pages[0].save(buf, "TIFF", save_all=True, append_images=pages[1:])
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def grey_png(w: int, h: int, *, bits: int = 8, rows: int | None = None) -> bytes:
    """A black ``w`` x ``h`` grey PNG written without holding its pixels (zeros compress to almost nothing).

    ``rows`` writes only that many rows of data (for headers of huge images: PIL would fill the rest with black).
    """
    ihdr = struct.pack(">IIBBBBB", w, h, bits, 0, 0, 0, 0)
    row = bytes(1 + w * bits // 8)
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(h if rows is None else rows)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
