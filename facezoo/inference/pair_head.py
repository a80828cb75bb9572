"""The binary "same person?" head of the face-recognition notes: logistic regression on pair features.

Instead of thresholding one distance, a small classifier looks at the element-wise differences of the two
embeddings: ``|f(a) - f(b)|`` (``"abs"``), the chi-square terms ``(f(a) - f(b))^2 / (|f(a)| + |f(b)|)``
(``"chi2"``; the notes' ``(f_a - f_b)^2 / (f_a + f_b)`` written for signed embeddings, whose components
can be negative or sum to zero), or both side by side (``"abs+chi2"``). ``PairClassifier.fit`` fits it on
labelled training pairs by Newton's method (L2-regularised, a few iterations, numpy only); it is saved
to ``.npz`` (numbers) holding its settings as a JSON string, and read back with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import os

import numpy as np

from facezoo.errors import ModelFileError, UsageError

FEATURES = ("abs", "chi2", "abs+chi2")
FORMAT = "facezoo-pair-head-1"
_EPS = 1e-6


def pair_features(a, b, kind: str = "abs+chi2") -> np.ndarray:
    """Features of embedding pairs ``a``, ``b`` (each (N, D) or (D,)) -> float64 (N, F)."""
    if kind not in FEATURES:
        raise UsageError(f"pair features must be one of {FEATURES}, got {kind!r}")
    a = np.atleast_2d(np.asarray(a, np.float64))
    b = np.atleast_2d(np.asarray(b, np.float64))
    if a.shape != b.shape:
        raise UsageError(f"pair features: the two embedding batches differ in shape, {a.shape} vs {b.shape}")
    diff = a - b
    parts = []
    if "abs" in kind:
        parts.append(np.abs(diff))
    if "chi2" in kind:
        parts.append(diff * diff / (np.abs(a) + np.abs(b) + _EPS))
    return np.concatenate(parts, axis=1)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


class PairClassifier:
    """Logistic regression ``P(same | a, b) = sigmoid(w . standardise(features(a, b)) + bias)``.

    Args:
        features: ``"abs"``, ``"chi2"`` or ``"abs+chi2"`` (see the module docstring).
        l2: ridge penalty on ``w`` (not on the bias), per training pair.
    """

    def __init__(self, features: str = "abs+chi2", l2: float = 1e-3):
        if features not in FEATURES:
            raise UsageError(f"features must be one of {FEATURES}, got {features!r}")
        if not (isinstance(l2, (int, float)) and l2 >= 0):
            raise UsageError(f"l2 must be a number >= 0, got {l2!r}")
        self.features = features
        self.l2 = float(l2)
        self.weights: np.ndarray | None = None
        self.bias = 0.0
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.info: dict = {}

    @property
    def fitted(self) -> bool:
        return self.weights is not None

    def _design(self, a, b) -> np.ndarray:
        x = pair_features(a, b, self.features)
        if self.mean is not None and x.shape[1] != len(self.mean):
            raise UsageError(f"pair head was fitted on {len(self.mean)} features ({self.features} of "
                             f"{len(self.mean) // (2 if '+' in self.features else 1)}-d embeddings), got {x.shape[1]}")
        return x

    def fit(self, a, b, same, *, iterations: int = 25) -> "PairClassifier":
        """Fits on pairs: embeddings ``a``, ``b`` (N, D) and ``same`` (N,) booleans, both classes present."""
        x = self._design(a, b)
        y = np.asarray(same, np.float64).reshape(-1)
        if len(y) != len(x):
            raise UsageError(f"fit: {len(x)} pairs but {len(y)} labels")
        if y.min() == y.max():
            raise UsageError("fit: the training pairs must include both same-person and different-person pairs")
        self.mean = x.mean(0)
        self.std = x.std(0) + 1e-9
        z = (x - self.mean) / self.std
        n, f = z.shape
        design = np.concatenate([z, np.ones((n, 1))], axis=1)
        theta = np.zeros(f + 1)
        penalty = np.full(f + 1, self.l2 * n)
        penalty[-1] = 0.0
        for _ in range(int(iterations)):
            p = _sigmoid(design @ theta)
            grad = design.T @ (p - y) + penalty * theta
            hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
            step = np.linalg.solve(hessian, grad)
            theta -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        self.weights, self.bias = theta[:-1], float(theta[-1])
        p = _sigmoid(design @ theta)
        self.info = {"n_pairs": int(n), "n_same": int(y.sum()),
                     "train_accuracy": float(np.mean((p >= 0.5) == (y > 0.5)))}
        return self

    def probability(self, a, b) -> np.ndarray:
        """P(same person) for each pair, float64 (N,)."""
        if not self.fitted:
            raise UsageError("the pair head is not fitted yet: call fit(a, b, same) or load a saved one")
        z = (self._design(a, b) - self.mean) / self.std
        return _sigmoid(z @ self.weights + self.bias)

    def save(self, path) -> str:
        """Writes ``path`` (``.npz``): the numbers plus a JSON string of the settings; no pickle."""
        if not self.fitted:
            raise UsageError("save: the pair head is not fitted")
        path = os.fspath(path)
        meta = json.dumps({"format": FORMAT, "features": self.features, "l2": self.l2, "info": self.info})
        tmp = path + ".tmp.npz"
        np.savez(tmp, weights=self.weights, bias=np.float64(self.bias), mean=self.mean, std=self.std,
                 meta=np.array(meta))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "PairClassifier":
        """Reads a file written by ``save`` (``allow_pickle=False``); a broken one is a ``ModelFileError``."""
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: np.asarray(data[k], np.float64) for k in ("weights", "bias", "mean", "std")}
        except FileNotFoundError:
            raise ModelFileError(f"{path}: pair head file is missing") from None
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{path}: not a facezoo pair head file ({type(e).__name__}: {e})") from None
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{path}: pair head format {meta.get('format')!r}, this facezoo reads {FORMAT!r}")
        head = cls(meta["features"], meta["l2"])
        head.weights, head.bias = arrays["weights"], float(arrays["bias"])
        head.mean, head.std, head.info = arrays["mean"], arrays["std"], meta.get("info", {})
        if not (head.weights.shape == head.mean.shape == head.std.shape):
            raise ModelFileError(f"{path}: pair head arrays disagree in shape")
        return head
