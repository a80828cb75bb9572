"""Decoding head logits in numpy: binary (sigmoid), nominal (softmax), ordinal (CORAL).

Kept apart from the Keras head layers (``facezoo.models.heads``, which re-exports these) so that the
exported-graph backends and the TensorFlow-free ``facezoo[lite]`` install decode exactly as ``predict``,
evaluation and tests do.
"""
from __future__ import annotations

import numpy as np

from facezoo.attributes import Attribute


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def decode_confidence(logits) -> np.ndarray:
    """Self-evaluation logits (N,) or (N, 1) -> the probability that each prediction is right, (N,)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits).reshape(-1)))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def ordinal_class_probabilities(logits):
    """Class probabilities from CORAL logits (N, K-1) -> (N, K).

    p_0 = 1 - P(y>0), p_k = P(y>k-1) - P(y>k), p_{K-1} = P(y>K-2); differences that come out
    negative (unordered biases) are clipped and the row renormalised.
    """
    s = _sigmoid(np.asarray(logits, np.float64))
    ones = np.ones(s.shape[:-1] + (1,))
    zeros = np.zeros(s.shape[:-1] + (1,))
    upper = np.concatenate([ones, s], axis=-1)
    lower = np.concatenate([s, zeros], axis=-1)
    p = np.clip(upper - lower, 0.0, None)
    return p / np.maximum(p.sum(axis=-1, keepdims=True), 1e-12)


def decode_head(attribute: Attribute, logits) -> dict:
    """Decodes a batch of head logits.

    Returns:
        dict of numpy arrays: ``probabilities`` (N, K) over ``attribute.classes``; ``index`` (N,)
        the predicted class; for binary heads ``positive`` (N,) = P(class 1); for ordinal heads
        ``value`` (N,) the expected value over ``attribute.values`` (or class indices) and ``index``
        the number of thresholds passed (the CORAL rank).
    """
    logits = np.asarray(logits, np.float64)
    if attribute.kind == "binary":
        p1 = _sigmoid(logits.reshape(len(logits)))
        return {"probabilities": np.stack([1 - p1, p1], -1), "index": (p1 > 0.5).astype(np.int64),
                "positive": p1}
    if attribute.kind == "nominal":
        p = _softmax(logits)
        return {"probabilities": p, "index": p.argmax(-1)}
    p = ordinal_class_probabilities(logits)
    values = np.asarray(attribute.values if attribute.values is not None else range(attribute.num_classes),
                        np.float64)
    rank = (_sigmoid(logits) > 0.5).sum(-1)
    return {"probabilities": p, "index": rank.astype(np.int64), "value": p @ values}
