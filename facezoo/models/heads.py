"""Head layers and their decoders: binary (sigmoid), nominal (softmax), ordinal (CORAL).

Heads emit logits; ``decode_head`` turns logits into probabilities, a class and, for ordinal
heads, an expected value. Decoding is numpy (``facezoo.decoding``, re-exported here) so that
``predict``, evaluation and tests share it.
"""
from __future__ import annotations

import keras
import numpy as np

from facezoo.attributes import Attribute
from facezoo.decoding import (  # noqa: F401  (re-exported)
    _sigmoid, _softmax, decode_confidence, decode_head, ordinal_class_probabilities)


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
