"""Pieces every backbone builder shares: argument checks, the classifier top, weight loading.

Builders follow ``keras.applications``: ``include_top``, ``weights``, ``input_tensor``,
``input_shape``, ``pooling``, ``classes``, ``classifier_activation``; plus ``width`` (a channel
multiplier, so CPU-sized variants exist) and ``activation``.
"""
from __future__ import annotations

import os

import keras

POOLINGS = (None, "avg", "max")
ACTIVATIONS = ("relu", "leaky_relu")


def scaled(channels: int, width: float, divisor: int = 8) -> int:
    """Channels times ``width``, rounded to a multiple of ``divisor`` (at least ``divisor``)."""
    if width == 1.0:
        return channels
    return max(divisor, int(channels * width + divisor / 2) // divisor * divisor)


def check_arguments(model_name, *, include_top, weights, input_shape, pooling, classes,
                    width, activation="relu", min_size=32, fixed_size=None, input_tensor=None):
    """Validates builder arguments before anything is built; errors say what to change.

    ``input_tensor``, when given, is checked like ``input_shape`` (and must agree with it), so a
    fixed-size top cannot be built on a tensor of another size.

    Returns:
        The input shape to use: ``input_shape``, the shape of ``input_tensor``, or ``fixed_size`` /
        ``(224, 224, 3)`` by default.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"{model_name}: pooling must be one of {POOLINGS}, got {pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"{model_name}: classes must be a positive int with include_top=True, got {classes!r}")
    if not isinstance(width, (int, float)) or not 0.0 < width <= 4.0:
        raise ValueError(f"{model_name}: width must be a number in (0, 4], got {width!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{model_name}: activation must be one of {ACTIVATIONS}, got {activation!r}")
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"{model_name}: weights must be None, a file path or a registered name, got {weights!r}")
    if input_tensor is not None:
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != tensor_shape:
            raise ValueError(f"{model_name}: input_shape {tuple(input_shape)} does not match the shape "
                             f"{tensor_shape} of input_tensor; give one of the two or make them agree")
        input_shape = tensor_shape
    if input_shape is None:
        input_shape = fixed_size or (224, 224, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"{model_name}: input_shape must be (height, width, channels), got {input_shape}")
    h, w, c = input_shape
    if c not in (1, 3):
        raise ValueError(f"{model_name}: input_shape must have 1 or 3 channels, got {c}")
    for side in (h, w):
        if side is not None and side < min_size:
            raise ValueError(
                f"{model_name}: input_shape {input_shape} is too small; each side must be >= {min_size}")
    if fixed_size and include_top and (h, w) != tuple(fixed_size[:2]):
        raise ValueError(
            f"{model_name}: with include_top=True the input must be {fixed_size[:2]} (the dense top "
            f"is sized for it); got {(h, w)}. Use include_top=False for other sizes.")
    if include_top and (h is None or w is None) and fixed_size:
        raise ValueError(f"{model_name}: include_top=True needs a fixed input size {fixed_size[:2]}")
    return input_shape


def model_input(input_tensor, input_shape):
    """A new ``keras.Input`` or the caller's ``input_tensor``."""
    if input_tensor is None:
        return keras.Input(shape=input_shape, name="image")
    return input_tensor


def act(x, activation, name):
    """ReLU, or LeakyReLU(0.2) as in the Adience age report."""
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=0.2, name=name)(x)
    return keras.layers.ReLU(name=name)(x)


def top(x, *, include_top, pooling, classes, classifier_activation, dropout=0.0):
    """Global pooling and/or the classifier, as ``keras.applications`` does.

    ``dropout`` (with ``include_top``) drops pooled features before the classifier (GoogLeNet).
    """
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="top_dropout")(x)
        return keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def fully_connected_top(x, *, include_top, pooling, classes, classifier_activation, units, dropout,
                        activation):
    """The flatten-and-dense classifier of AlexNet and VGG; without it, ``top``'s pooling choices.

    Flattening ties the Dense weights to the feature-map size, so builders using this top fix the
    input size with ``check_arguments(fixed_size=...)``. Each hidden layer is Dense, activation,
    Dropout — dropout "in the first two fully-connected layers" as both papers and the Caffe reference
    models have it (torchvision puts it before each Dense instead: the same parameters, and the same
    model at inference).

    Args:
        x: the last feature map.
        include_top: add the classifier; otherwise pool as ``pooling`` says.
        pooling: None, ``"avg"`` or ``"max"`` (used without the top).
        classes: classifier size.
        classifier_activation: activation of the classifier (None for logits).
        units: widths of the hidden Dense layers, named ``fc1``, ``fc2``, ...
        dropout: dropout rate after each hidden layer.
        activation: ``"relu"`` or ``"leaky_relu"``.

    Returns:
        The classifier output, or the pooled / unpooled features.
    """
    if not include_top:
        return top(x, include_top=False, pooling=pooling, classes=classes,
                   classifier_activation=classifier_activation)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, n in enumerate(units, start=1):
        x = act(keras.layers.Dense(n, name=f"fc{i}")(x), activation, f"fc{i}_{activation}")
        x = keras.layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    return keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def conv_act(x, filters, kernel, *, activation, batch_norm, name, strides=1, padding="same"):
    """A biased convolution, optional BatchNorm, then the activation (AlexNet and VGG layers).

    The bias stays when ``batch_norm`` adds BN (as torchvision's ``vgg16_bn`` has it), so the
    parameter counts match the published ones and weights port one to one. BN uses torchvision's
    epsilon (1e-5) and momentum (0.1 there, 0.9 in Keras' convention).

    Layers are named ``name``, ``{name}_bn`` and ``{name}_{activation}``.
    """
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding,
                            kernel_initializer="he_normal", name=name)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    return act(x, activation, f"{name}_{activation}")


def finish(model_name, inputs, outputs, weights):
    """Builds the functional model and loads ``weights`` (a path or a registered name)."""
    if isinstance(inputs, keras.KerasTensor) and getattr(inputs, "_keras_history", None):
        sources = keras.utils.get_source_inputs(inputs)
        inputs = sources[0] if len(sources) == 1 else sources
    model = keras.Model(inputs, outputs, name=model_name)
    if weights is not None:
        from facezoo.models.weights import load_weights
        load_weights(model, weights)
    return model
