"""Embedding arrays without TensorFlow: checking their shape and values, Euclidean distances."""
from __future__ import annotations

import numpy as np

from facezoo.errors import UsageError


def as_embeddings(x, dim: int, what: str = "embeddings") -> np.ndarray:
    """``x`` as a float32 (N, dim) array of finite numbers (a single (dim,) vector becomes (1, dim))."""
    try:
        arr = np.asarray(x, np.float32)
    except (TypeError, ValueError):
        raise UsageError(f"{what}: expected numbers of shape (N, {dim}), got {type(x).__name__}") from None
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise UsageError(f"{what}: expected shape (N, {dim}) or ({dim},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise UsageError(f"{what}: contains NaN or infinite values")
    return arr


def euclidean(a, b) -> np.ndarray:
    """Row-wise Euclidean distances of two (N, D) arrays (or one row against N)."""
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    return np.sqrt(np.maximum(((a - b) ** 2).sum(-1), 0.0))
