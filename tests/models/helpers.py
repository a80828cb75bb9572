"""Checks that every backbone test repeats, so each test states only what differs.

After keras-hub's ``run_backbone_test`` / ``run_model_saving_test``: build, run a tiny batch,
compare against what the builder promises.
"""
from __future__ import annotations

import keras
import numpy as np

from tests.helpers import random_images


def predict(model, x):
    """Inference-mode outputs as numpy (a direct call: ``predict`` costs ~50 ms per call here)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def trainable_params(model):
    """Trainable parameters, the figure papers and torchvision publish (BN moving statistics excluded)."""
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def layer_names(model):
    """Names of all layers in graph order."""
    return [layer.name for layer in model.layers]


def run_backbone_test(builder, *, input_shape, expected_output_shape, **kwargs):
    """Builds ``builder(input_shape=..., **kwargs)`` and runs two RGB images through it.

    Checks the output shape (batch included), that the outputs are finite, that layer names are
    unique, and that the only non-trainable weights are BatchNorm moving statistics.

    Returns:
        ``(model, x, y)``: the model, its input batch and its outputs.
    """
    model = builder(input_shape=input_shape, **kwargs)
    x = random_images(2, input_shape[:2])
    y = predict(model, x)
    assert y.shape == tuple(expected_output_shape), f"{model.name}: {y.shape} != {expected_output_shape}"
    assert np.all(np.isfinite(y)), f"{model.name}: non-finite outputs"
    names = layer_names(model)
    assert len(names) == len(set(names)), f"{model.name}: duplicate layer names"
    for w in model.non_trainable_weights:
        assert w.path.endswith(("moving_mean", "moving_variance")), f"{model.name}: {w.path} is frozen"
    return model, x, y


def run_model_saving_test(model, x, path):
    """Saves ``model`` as ``.keras``, reloads it with ``safe_mode=True``; outputs must be identical.

    Returns:
        The reloaded model.
    """
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert layer_names(loaded) == layer_names(model)
    np.testing.assert_array_equal(predict(loaded, x), predict(model, x))
    return loaded
