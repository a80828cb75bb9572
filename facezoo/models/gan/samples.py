"""Sample grids of a generator from fixed noise, so the grids of successive epochs compare like for like."""
from __future__ import annotations

import os

import numpy as np


def fixed_noise(count: int, latent_dim: int, seed: int = 0) -> np.ndarray:
    """``(count, latent_dim)`` float32 standard-normal noise, the same for the same seed on every machine."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def grid_conditions(conditions, columns: int) -> np.ndarray:
    """Condition rows of a conditional sample grid: none on, each attribute alone, all on.

    Returns:
        ``((len(conditions) + 2) * columns, len(conditions))`` float32: every row of the grid repeats
        one condition ``columns`` times (one column per noise vector).
    """
    k = len(conditions)
    rows = np.concatenate([np.zeros((1, k)), np.eye(k), np.ones((1, k))]).astype(np.float32)
    return np.repeat(rows, columns, axis=0)


def image_grid(images, columns: int, pad: int = 2) -> np.ndarray:
    """Tiles ``(N, H, W, 3)`` images in [-1, 1] into one uint8 image, ``columns`` per row, on a white background."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
    pixels = np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    for i, image in enumerate(pixels):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top:top + h, left:left + w] = image
    return grid


def save_image_grid(images, path, columns: int) -> str:
    """Writes ``image_grid(images, columns)`` as a PNG (through a temporary file, so readers never see half
    a file); returns the path."""
    from PIL import Image

    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        Image.fromarray(image_grid(images, columns)).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
