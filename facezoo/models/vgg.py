"""VGG-16 (Simonyan & Zisserman 2015, configuration D) in the ``keras.applications`` style.

Stacks are data (``STACKS``: filters and 3×3 convolutions per block, each block closed by a 2×2
max pool); ``VGG`` builds one and ``vgg16`` only picks it. Layer names follow
``keras.applications.VGG16`` (``block1_conv1``, ``block1_pool``, ``fc1``, ``fc2``, ``predictions``),
with the activation as its own layer (``block1_conv1_relu``) so ``activation`` can swap it.

With ``include_top`` the 7×7×512 map is flattened into the 4096-4096 classifier, so the input is
fixed at 224×224; without it any side of at least 32 works. ``batch_norm=True`` gives torchvision's
``vgg16_bn``: BatchNorm after every convolution, convolution biases kept, none in the classifier.
"""
from __future__ import annotations

import keras

from facezoo.models import backbone as bb

# name -> ((filters, convolutions) per block)
STACKS = {"vgg16": ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))}
FC_UNITS = (4096, 4096)
DROPOUT = 0.5
INPUT_SIZE = (224, 224, 3)
# Trainable parameters at 224x224x3 with the 1000-class top (Simonyan & Zisserman 2015, Table 2:
# 138 M; exact figures from torchvision VGG16_Weights / VGG16_BN_Weights.IMAGENET1K_V1, num_params —
# BN moving statistics are buffers there and non-trainable here, so both count gamma and beta only).
PUBLISHED_PARAMS = {"vgg16": 138_357_544, "vgg16_bn": 138_365_992}


def VGG(model_name, *, include_top=True, weights=None, input_tensor=None, input_shape=None,
        pooling=None, classes=1000, classifier_activation="softmax", width=1.0, activation="relu",
        batch_norm=False):
    """Builds the VGG named ``model_name`` (a key of ``STACKS``); ``{model_name}_bn`` with BN.

    Args:
        model_name: ``vgg16``.
        include_top: add the flatten, 4096-4096 (dropout 0.5) and ``classes``-way classifier; the
            input must then be 224×224.
        weights: None (random), a weights file path, or a pretrained name registered in ``facezoo.zoo``.
        input_tensor: optional Keras tensor to build on.
        input_shape: ``(H, W, C)``; default ``(224, 224, 3)``. Without the top, sides >= 32 (or None).
        pooling: with ``include_top=False``: None (4-D feature map), ``"avg"`` or ``"max"``.
        classes: classifier size when ``include_top``.
        classifier_activation: activation of the classifier (None for logits).
        width: multiplier for the convolution channels and the hidden Dense widths.
        activation: ``"relu"`` or ``"leaky_relu"`` (LeakyReLU 0.2), in every layer.
        batch_norm: BatchNorm after each convolution (torchvision's ``vgg16_bn``).

    Returns:
        A functional ``keras.Model``.
    """
    if model_name not in STACKS:
        raise ValueError(f"Unknown VGG {model_name!r}; choose one of {sorted(STACKS)}")
    stack = STACKS[model_name]
    if batch_norm:
        model_name = f"{model_name}_bn"
    input_shape = bb.check_arguments(
        model_name, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, width=width, activation=activation, fixed_size=INPUT_SIZE,
        input_tensor=input_tensor)

    x = inputs = bb.model_input(input_tensor, input_shape)
    for block, (filters, convs) in enumerate(stack, start=1):
        for i in range(1, convs + 1):
            x = bb.conv_act(x, bb.scaled(filters, width), 3, activation=activation,
                            batch_norm=batch_norm, name=f"block{block}_conv{i}")
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    x = bb.fully_connected_top(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, units=[bb.scaled(u, width) for u in FC_UNITS],
        dropout=DROPOUT, activation=activation)
    return bb.finish(model_name, inputs, x, weights)


def vgg16(**kwargs):
    """VGG-16 (configuration D: 2-2-3-3-3 convolutions). Arguments as ``VGG``."""
    return VGG("vgg16", **kwargs)
