"""Multiply-accumulate counts of Keras models (convolutions and dense layers dominate CNN cost)."""
from __future__ import annotations

import numpy as np
import keras


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (Conv2D, Conv2DTranspose, DepthwiseConv2D, Dense).

    FLOPs are conventionally reported as 2 × MACs. Nested models are counted through.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_macs(layer)
            continue
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1] // layer.groups
            total += int(out[1] * out[2] * out[3] * kh * kw * cin)
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            # Every input pixel scatters a kh x kw x cout kernel per input channel.
            inp = layer.input.shape
            kh, kw = layer.kernel_size
            total += int(inp[1] * inp[2] * inp[3] * kh * kw * layer.filters)
        elif isinstance(layer, keras.layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            total += int(out[1] * out[2] * out[3] * kh * kw)
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total
