"""Re-estimating BatchNormalization statistics on one data set (AdaBN, Li et al., 2016).

A trunk trained on several data sets through one set of BatchNormalization layers (thesis §3.4)
keeps one running mean and variance per layer, an average over batches of every data set. When one
data set's branch is shipped as its own model, its inputs come from that data set alone: the
statistics that match them are that data set's. ``recalibrate_batchnorm`` recomputes them from
training images (never validation images), leaving every trained weight as it is.
"""
from __future__ import annotations

import keras
import tensorflow as tf


def batchnorm_layers(model) -> list:
    """Every ``BatchNormalization`` layer of ``model``, nested models included."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def recalibrate_batchnorm(model, batches, max_batches: int | None = None) -> int:
    """Sets every BatchNormalization layer's moving mean and variance to their means over ``batches``.

    Each batch runs through the model in training mode (so each layer normalises with the batch's
    own statistics, as in training) and the layers' moving statistics become the plain average
    over all batches, not an exponential one. Trainable weights do not change.

    Args:
        model: a built Keras model.
        batches: iterable of preprocessed image batches, or of ``(images, ...)`` tuples (e.g. a
            ``facezoo.data.pipeline`` dataset with ``training=False``). Use equal batch sizes.
        max_batches: stop after this many.

    Returns:
        The number of batches used.

    Raises:
        ValueError: the model has no BatchNormalization layer, or ``batches`` is empty.
    """
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError(f"recalibrate_batchnorm: {model.name!r} has no BatchNormalization layer")
    saved = [(layer.momentum, layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    n = 0
    try:
        for batch in batches:
            if max_batches is not None and n >= max_batches:
                break
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            # Running average: after batch i (from 0) each statistic is the mean of batches 0..i.
            for layer in layers:
                layer.momentum = n / (n + 1)
            model(tf.convert_to_tensor(images), training=True)
            n += 1
    except BaseException:
        for layer, (_m, mean, var) in zip(layers, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(var)
        raise
    finally:
        for layer, (momentum, _mean, _var) in zip(layers, saved):
            layer.momentum = momentum
    if n == 0:
        for layer, (_m, mean, var) in zip(layers, saved):
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(var)
        raise ValueError("recalibrate_batchnorm: no batch to estimate the statistics from")
    return n
