"""Folding BatchNormalization into the Conv2D / Dense layer before it, for inference.

After training a BatchNormalization layer is an affine map per channel,
``y = gamma * (x - mean) / sqrt(var + eps) + beta``. When its input is the output of a linear
convolution or dense layer that nothing else reads, the map can be merged into that layer's kernel
and bias: ``W' = W * s`` (per output channel) and ``b' = (b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``. The folded model computes the same function with fewer ops and
fewer tensors between layers; exporters (TFLite, ONNX) see one convolution instead of a
convolution and five element-wise ops, and int8 quantization gets one scale per folded channel.

The pattern is found from the graph, not from names (DMTL trunks name the pair
``{name}_conv``/``{name}_bn``, branches ``{prefix}_fc``/``{prefix}_bn`` and
``{prefix}_reduce``/``{prefix}_reduce_bn``): a ``BatchNormalization`` over the last axis whose single
input is produced by a ``Conv2D``, ``DepthwiseConv2D`` or ``Dense`` layer with a linear activation,
channels-last data, used once in the model, and whose output feeds nothing but that
BatchNormalization. Layers inside nested models are left as they are.
"""
from __future__ import annotations

import keras
import numpy as np

FOLDABLE = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)


def _nodes(model):
    return [node for nodes in model._nodes_by_depth.values() for node in nodes]


def foldable_pairs(model) -> list[tuple[str, str]]:
    """``(layer name, batchnorm name)`` of every BatchNormalization ``fold_batch_norm`` merges away."""
    nodes = _nodes(model)
    consumers: dict[int, int] = {}
    uses: dict[int, int] = {}
    for node in nodes:
        if node.operation is not None:
            uses[id(node.operation)] = uses.get(id(node.operation), 0) + 1
        for t in node.input_tensors:
            consumers[id(t)] = consumers.get(id(t), 0) + 1
    for t in model.outputs:
        consumers[id(t)] = consumers.get(id(t), 0) + 1
    pairs = []
    for node in nodes:
        bn = node.operation
        if not isinstance(bn, keras.layers.BatchNormalization) or len(node.input_tensors) != 1:
            continue
        source = node.input_tensors[0]
        layer = source._keras_history.operation
        rank = len(source.shape)
        axes = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
        if (isinstance(layer, FOLDABLE) and uses.get(id(layer)) == 1 and uses.get(id(bn)) == 1
                and consumers.get(id(source)) == 1
                and [a % rank for a in axes] == [rank - 1]
                and keras.activations.serialize(layer.activation) in ("linear", {"class_name": "linear"})
                and getattr(layer, "data_format", "channels_last") == "channels_last"):
            pairs.append((layer.name, bn.name))
    return pairs


def _batchnorm_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """``(scale, shift)`` with ``bn(x) == x * scale + shift`` at inference, in float64."""
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.epsilon)
    return scale, beta - mean * scale


def _folded_weights(layer, bn) -> tuple[np.ndarray, np.ndarray]:
    scale, shift = _batchnorm_affine(bn)
    kernel = np.asarray(layer.kernel.numpy(), np.float64)
    bias = np.asarray(layer.bias.numpy(), np.float64) if layer.use_bias else np.zeros_like(scale)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        # Output channel c * multiplier + m comes from kernel[..., c, m].
        kernel = kernel * scale.reshape(kernel.shape[-2:])
    else:
        kernel = kernel * scale
    return kernel.astype(np.float32), (bias * scale + shift).astype(np.float32)


def fold_batch_norm(model):
    """A functional copy of ``model`` with every foldable BatchNormalization merged into its producer.

    Args:
        model: a built functional Keras model (a ``facezoo`` DMTL model or any ``keras.Model``
            built from ``keras.Input``). It is not changed.

    Returns:
        A new ``keras.Model`` with the same inputs and output structure, computing the same outputs
        at inference (``training=False``) up to float32 rounding; its layers keep their names
        (folded layers gain a bias). The model's ``dmtl_config``, if any, is carried over so
        ``heads_of`` and ``FaceModel`` work on it. A model with nothing to fold comes back as a copy.

    Raises:
        ValueError: ``model`` is not a functional model.

    Examples:
        >>> folded = fold_batch_norm(facezoo.load("dmtl_celeba", backend="keras").model)
        >>> [l for l in folded.layers if isinstance(l, keras.layers.BatchNormalization)]
        []
    """
    if not hasattr(model, "_nodes_by_depth"):
        raise ValueError(f"fold_batch_norm needs a functional Keras model, got {type(model).__name__}")
    pairs = foldable_pairs(model)
    producer_of = {bn: layer for layer, bn in pairs}
    folded_layers = set(producer_of.values())
    clones: dict[str, keras.layers.Layer] = {}

    def clone(layer):
        if layer.name in producer_of:
            return layer  # marker: skipped by call(), never part of the new model
        config = layer.get_config()
        if layer.name in folded_layers:
            config["use_bias"] = True
        new = layer.__class__.from_config(config)
        clones[layer.name] = new
        return new

    def call(layer, *args, **kwargs):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.name in producer_of:
            return args[0] if args else kwargs["inputs"]
        return layer(*args, **kwargs)

    folded = keras.models.clone_model(model, clone_function=clone, call_function=call)
    originals = {layer.name: layer for layer in model.layers}
    bn_of = {layer: bn for layer, bn in pairs}
    for name, new in clones.items():
        old = originals[name]
        if name in bn_of:
            kernel, bias = _folded_weights(old, originals[bn_of[name]])
            new.kernel.assign(kernel)
            new.bias.assign(bias)
        else:
            new.set_weights(old.get_weights())
    if hasattr(model, "dmtl_config"):
        folded.dmtl_config = model.dmtl_config
    return folded


def inference_network(model, fold: bool = True, flip_test: bool = False):
    """The network an inference runtime runs: ``fold_batch_norm(model)`` when ``fold`` and there is a
    BatchNormalization to fold, else ``model`` itself (no copy); with ``flip_test`` (a card's
    ``architecture["flip_test"]``), that network wrapped by ``facezoo.optimize.flip.flip_test_network``."""
    network = model
    if fold and hasattr(model, "_nodes_by_depth") and foldable_pairs(model):
        network = fold_batch_norm(model)
    if flip_test:
        from facezoo.optimize.flip import flip_test_network
        network = flip_test_network(network)
    return network
