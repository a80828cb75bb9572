"""Flip test: a network whose outputs are the mean of its outputs on each image and on its mirror image.

Faces are close to mirror-symmetric and none of the shipped heads has a left/right label (CelebA's 40
attributes, age, gender, race and the expressions all keep their meaning under a horizontal flip), so two
views of a face give two estimates of the same answer; their mean is the usual test-time augmentation.
The mean is taken over the *logits* of every output (binary, nominal and CORAL heads and the confidence
logits alike), which keeps the output structure, so decoding, exports and serving signatures need no change.

``flip_test_network(model)`` is a functional ``keras.Model`` (two calls of ``model``, which shares its
weights), so exports built from it (SavedModel, ONNX, TFLite) carry the flip inside the graph and every
backend gives the same answers. A card turns it on with ``architecture["flip_test"] = true``; its metrics
were then measured with it (``facezoo evaluate`` reads the same key). The network work per face doubles.
"""
from __future__ import annotations

import keras


def flip_test_network(model: keras.Model) -> keras.Model:
    """``model`` with every output replaced by the mean of its value on the input and on the input mirrored
    along the width axis (NHWC). Output names and structure are kept; a ``dmtl_config`` attribute is carried.

    Args:
        model: a Keras model on NHWC images with one input.

    Returns:
        A new functional model sharing ``model``'s weights.
    """
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(f"flip_test_network: {model.name} must take one NHWC image input, "
                         f"it takes {[tuple(t.shape) for t in model.inputs]}")
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype=model.inputs[0].dtype,
                         name=model.inputs[0].name.split(":")[0])
    mirrored = keras.ops.flip(inputs, axis=2)
    plain, flipped = model(inputs), model(mirrored)
    if isinstance(plain, dict):
        outputs = {k: keras.layers.Average(name=k)([plain[k], flipped[k]]) for k in plain}
    elif isinstance(plain, (list, tuple)):
        outputs = [keras.layers.Average()([a, b]) for a, b in zip(plain, flipped)]
    else:
        outputs = keras.layers.Average()([plain, flipped])
    network = keras.Model(inputs, outputs, name=f"{model.name}_flip_test")
    if hasattr(model, "dmtl_config"):
        network.dmtl_config = model.dmtl_config
    return network
