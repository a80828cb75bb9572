"""Head layers and their decoders: binary (sigmoid), nominal (softmax), ordinal (CORAL).

Heads emit logits; ``decode_head`` turns logits into probabilities, a class and, for ordinal
heads, an expected value. Decoding is numpy so that ``predict``, evaluation and tests share it.
"""
from __future__ import annotations

import keras
import numpy as np

from facezoo.attributes import Attribute


@keras.saving.register_keras_serializable(package="facezoo")
class OrdinalLogits(keras.layers.Layer):
    """Rank-consistent ordinal logits (CORAL, Cao, Mirjalili & Raschka 2020).

    One weight vector shared by all K-1 binary tasks "is y > k", and K-1 biases. With shared weights
    the K-1 probabilities are ordered whenever the biases are, so the decoded class is consistent.

    Args:
        num_classes: K, the number of ordered classes.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"OrdinalLogits needs num_classes >= 2, got {num_classes}")
        self.num_classes = int(num_classes)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 1),
                                      initializer="glorot_uniform")
        # Start with P(y > k) decreasing in k, as the data will have it.
        k = self.num_classes - 1
        init = np.linspace(2.0, -2.0, k).astype("float32") if k > 1 else np.zeros(1, "float32")
        self.bias = self.add_weight(name="bias", shape=(k,),
                                    initializer=keras.initializers.Constant(init))

    def call(self, x):
        return keras.ops.matmul(x, keras.ops.cast(self.kernel, x.dtype)) + keras.ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.num_classes - 1,)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="facezoo")
class StopGradient(keras.layers.Layer):
    """Passes its input on and blocks its gradient (the self-evaluation head reads, never steers, a head)."""

    def call(self, x):
        return keras.ops.stop_gradient(x)


def head_units(attribute: Attribute) -> int:
    """Logit count of the head for ``attribute``."""
    if attribute.kind == "binary":
        return 1
    if attribute.kind == "nominal":
        return attribute.num_classes
    return attribute.num_classes - 1


def head_layer(attribute: Attribute, name: str):
    """The logit layer for ``attribute``."""
    if attribute.kind == "ordinal":
        return OrdinalLogits(attribute.num_classes, name=name)
    return keras.layers.Dense(head_units(attribute), name=name)


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
