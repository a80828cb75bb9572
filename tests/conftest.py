"""Shared test fixtures (additive: each helper adds its own, with distinct names).

Synthetic data: ``write_jpeg`` writes a small patterned image; ``celeba_layout`` and ``utk_layout``
build tiny copies of the official CelebA and UTKFace layouts under ``tmp_path``.
"""
import pathlib

import numpy as np
import pytest
from PIL import Image

from facezoo.attributes import CELEBA_NAMES


def _write_jpeg(path, size=(12, 10), seed=0, mode="RGB", quality=90):
    """Writes a (width, height) image with random pixels (so JPEG bytes differ per seed)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path, quality=quality)
    return path


@pytest.fixture
def write_jpeg():
    """``write(path, size=(w, h), seed=0, mode="RGB")`` -> path of a small random-pixel image."""
    return _write_jpeg


def _celeba_layout(root, n=6, *, landmarks=True, identity=True, partitions=(0, 0, 0, 0, 1, 2)):
    """Writes a tiny CelebA tree with CRLF line ends and runs of spaces, as the official files."""
    root = pathlib.Path(root)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for i, name in enumerate(names):
        _write_jpeg(root / "img_align_celeba" / name, size=(18, 22), seed=i)
    values = [[1 if (i + j) % 3 == 0 else -1 for j in range(40)] for i in range(n)]
    rows = [f"{name} " + " ".join(f"{v:2d}" for v in vals) for name, vals in zip(names, values)]
    (root / "list_attr_celeba.txt").write_bytes(
        "\r\n".join([str(n), " ".join(CELEBA_NAMES) + " "] + rows).encode() + b"\r\n")
    (root / "list_eval_partition.txt").write_bytes(
        "".join(f"{name} {partitions[i % len(partitions)]}\r\n" for i, name in enumerate(names)).encode())
    if identity:
        (root / "identity_CelebA.txt").write_bytes(
            "".join(f"{name} {100 + i // 2}\r\n" for i, name in enumerate(names)).encode())
    if landmarks:
        header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y " \
                 "rightmouth_x rightmouth_y"
        lm = [f"{name}    5   8  12   8   9  12   6  16  12  16" for name in names]
        (root / "list_landmarks_align_celeba.txt").write_bytes(
            "\r\n".join([str(n), header] + lm).encode() + b"\r\n")
    return root, names, values


@pytest.fixture
def celeba_layout(tmp_path):
    """``make(n=6, landmarks=True, identity=True)`` -> (root, image names, ±1 values per row)."""
    return lambda **kw: _celeba_layout(tmp_path / "celeba", **kw)


@pytest.fixture
def utk_layout(tmp_path):
    """``make(names, subdir=True)`` -> root holding the named UTKFace images."""
    def make(names, subdir=True):
        root = tmp_path / "utkface"
        folder = root / "UTKFace" if subdir else root
        for i, name in enumerate(names):
            _write_jpeg(folder / name, size=(16, 16), seed=i)
        return root
    return make


@pytest.fixture(autouse=True, scope="session")
def _facezoo_graph_cache(tmp_path_factory):
    """Graphs the backends build or optimise (facezoo.backends) go to a temporary cache, not the user's."""
    import os
    previous = os.environ.get("FACEZOO_CACHE")
    os.environ["FACEZOO_CACHE"] = str(tmp_path_factory.mktemp("facezoo-cache"))
    yield
    if previous is None:
        os.environ.pop("FACEZOO_CACHE", None)
    else:
        os.environ["FACEZOO_CACHE"] = previous
