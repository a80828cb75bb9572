"""ResNet-18/34/50 (He et al. 2016) in the ``keras.applications`` style.

Stacks are data (``STACKS``); ``ResNet`` builds any of them and the public constructors only pick
one. Layer names follow ``keras.applications`` (``conv2_block1_1_conv``) so graphs read like the
paper and weights load by name. Convolutions carry no bias (BatchNorm follows), so the canonical
parameter counts equal the published ones (``PUBLISHED_PARAMS``, torchvision's figures: trainable
parameters, BN moving statistics excluded). ResNet-50 puts the stride on the 3×3 convolution (v1.5).
"""
from __future__ import annotations

import keras

from facezoo.models import backbone as bb

# name -> (block kind, blocks per stage)
STACKS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
STAGE_FILTERS = (64, 128, 256, 512)
# Trainable parameters at 224x224x3 with the 1000-class top (He et al. 2016; torchvision).
PUBLISHED_PARAMS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032}
BN_EPSILON = 1.001e-5
BN_MOMENTUM = 0.9


def _bn(x, name):
    return keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _conv(x, filters, kernel, stride, name):
    return keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                               kernel_initializer="he_normal", name=name)(x)


def basic_block(x, filters, stride, activation, name):
    """Two 3×3 convolutions with an identity (or 1×1 projection) shortcut."""
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _bn(_conv(x, filters, 1, stride, f"{name}_0_conv"), f"{name}_0_bn")
    y = _bn(_conv(x, filters, 3, stride, f"{name}_1_conv"), f"{name}_1_bn")
    y = bb.act(y, activation, f"{name}_1_{activation}")
    y = _bn(_conv(y, filters, 3, 1, f"{name}_2_conv"), f"{name}_2_bn")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return bb.act(y, activation, f"{name}_out")


def bottleneck_block(x, filters, stride, activation, name):
    """1×1 reduce, 3×3 (strided), 1×1 expand ×4, with a projection shortcut where shapes change."""
    out = 4 * filters
    shortcut = x
    if stride != 1 or x.shape[-1] != out:
        shortcut = _bn(_conv(x, out, 1, stride, f"{name}_0_conv"), f"{name}_0_bn")
    y = bb.act(_bn(_conv(x, filters, 1, 1, f"{name}_1_conv"), f"{name}_1_bn"), activation, f"{name}_1_{activation}")
    y = _bn(_conv(y, filters, 3, stride, f"{name}_2_conv"), f"{name}_2_bn")
    y = bb.act(y, activation, f"{name}_2_{activation}")
    y = _bn(_conv(y, out, 1, 1, f"{name}_3_conv"), f"{name}_3_bn")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return bb.act(y, activation, f"{name}_out")


BLOCKS = {"basic": basic_block, "bottleneck": bottleneck_block}


def ResNet(model_name, *, include_top=True, weights=None, input_tensor=None, input_shape=None,
           pooling=None, classes=1000, classifier_activation="softmax", width=1.0, activation="relu"):
    """Builds the ResNet named ``model_name`` (a key of ``STACKS``).

    Args:
        model_name: ``resnet18``, ``resnet34`` or ``resnet50``.
        include_top: add global average pooling and a ``classes``-way Dense classifier.
        weights: None (random), a weights file path, or a pretrained name registered in ``facezoo.zoo``.
        input_tensor: optional Keras tensor to build on.
        input_shape: ``(H, W, C)``; default ``(224, 224, 3)``. Sides may be None without a top.
        pooling: with ``include_top=False``: None (4-D feature map), ``"avg"`` or ``"max"``.
        classes: classifier size when ``include_top``.
        classifier_activation: activation of the classifier (None for logits).
        width: channel multiplier (0.5 gives the CPU-sized 2.8 M-parameter ResNet-18 trunk).
        activation: ``"relu"`` or ``"leaky_relu"`` (LeakyReLU 0.2, the Adience age report).

    Returns:
        A functional ``keras.Model``.
    """
    if model_name not in STACKS:
        raise ValueError(f"Unknown ResNet {model_name!r}; choose one of {sorted(STACKS)}")
    input_shape = bb.check_arguments(
        model_name, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, width=width, activation=activation, input_tensor=input_tensor)
    kind, depths = STACKS[model_name]
    block = BLOCKS[kind]

    inputs = bb.model_input(input_tensor, input_shape)
    x = _conv(inputs, bb.scaled(64, width), 7, 2, "conv1_conv")
    x = bb.act(_bn(x, "conv1_bn"), activation, f"conv1_{activation}")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    for stage, (filters, depth) in enumerate(zip(STAGE_FILTERS, depths)):
        for i in range(depth):
            stride = 2 if (i == 0 and stage > 0) else 1
            x = block(x, bb.scaled(filters, width), stride, activation, f"conv{stage + 2}_block{i + 1}")
    x = bb.top(x, include_top=include_top, pooling=pooling, classes=classes,
               classifier_activation=classifier_activation)
    return bb.finish(model_name, inputs, x, weights)


def resnet18(**kwargs):
    """ResNet-18 (basic blocks 2-2-2-2). Arguments as ``ResNet``."""
    return ResNet("resnet18", **kwargs)


def resnet34(**kwargs):
    """ResNet-34 (basic blocks 3-4-6-3). Arguments as ``ResNet``."""
    return ResNet("resnet34", **kwargs)


def resnet50(**kwargs):
    """ResNet-50 (bottleneck blocks 3-4-6-3). Arguments as ``ResNet``."""
    return ResNet("resnet50", **kwargs)
