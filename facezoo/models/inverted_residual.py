"""The inverted-residual block MobileNetV2 and EfficientNet-Lite share, and the checks around it.

MobileNetV2 (Sandler et al. 2018) and EfficientNet-Lite's MBConv without squeeze-excitation
(Tan & Le 2019) are the same block: 1×1 expansion, BN, ReLU6, k×k depthwise, BN, ReLU6, linear
1×1 projection, BN, and an identity shortcut when the shape is kept. The families differ only in
data: kernel sizes, BatchNorm epsilon/momentum, and how a strided convolution pads, which matters
for ported weights:

* ``"same"``: Keras/TF ``'same'`` (more padding at the bottom/right), as the TF-trained
  EfficientNet-Lite checkpoints saw;
* ``"symmetric"``: ``ZeroPadding2D(k // 2)`` then ``'valid'``, as torchvision's convolutions
  (``padding=k // 2`` on every side) have it.

Layers of a block named ``block2a`` are ``block2a_expand_conv``, ``block2a_expand_bn``,
``block2a_expand_{activation}``, ``block2a_dwconv_pad`` (symmetric padding only), ``block2a_dwconv``,
``block2a_dwconv_bn``, ``block2a_dwconv_{activation}``, ``block2a_project_conv``,
``block2a_project_bn``, then ``block2a_drop`` and ``block2a_add`` with a shortcut.
"""
from __future__ import annotations

import dataclasses

import keras

from facezoo.models import backbone as bb

ACTIVATIONS = ("relu6", "relu", "leaky_relu")


@dataclasses.dataclass(frozen=True)
class Norm:
    """BatchNorm settings of a family (Keras momentum convention: the moving average's decay)."""

    epsilon: float
    momentum: float


def check_activation(model_name, activation):
    """ReLU6 is these families' own activation; ``relu``/``leaky_relu`` are offered as for the other backbones."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"{model_name}: activation must be one of {ACTIVATIONS}, got {activation!r}")


def check_imagenet(model_name, *, weights, include_top, classes, width, activation, input_shape):
    """With ``weights="imagenet"``, the arguments must describe the network the weights came from."""
    if weights != "imagenet":
        return
    if include_top and classes != 1000:
        raise ValueError(f"{model_name}: weights='imagenet' with include_top=True needs classes=1000, got {classes}; "
                         "use include_top=False and add your own classifier")
    if width != 1.0:
        raise ValueError(f"{model_name}: weights='imagenet' exist only for width=1.0, got {width}")
    if activation != "relu6":
        raise ValueError(f"{model_name}: weights='imagenet' were trained with activation='relu6', got {activation!r}")
    if input_shape[-1] != 3:
        raise ValueError(f"{model_name}: weights='imagenet' need 3-channel RGB input, got {input_shape[-1]} channels")


def activation_layer(x, activation, name):
    """ReLU6, or the ReLU / LeakyReLU(0.2) of ``backbone.act``."""
    if activation == "relu6":
        return keras.layers.ReLU(max_value=6.0, name=name)(x)
    return bb.act(x, activation, name)


def conv_bn_act(x, filters, kernel, stride, *, norm, padding, activation, name):
    """Bias-free convolution, BN, activation: the stem and the 1×1 head (``{name}_conv``, ``_bn``, ``_{act}``)."""
    x = _padded_conv(keras.layers.Conv2D, x, kernel, stride, padding, f"{name}_conv", filters=filters,
                     kernel_initializer="he_normal")
    x = keras.layers.BatchNormalization(epsilon=norm.epsilon, momentum=norm.momentum, name=f"{name}_bn")(x)
    return activation_layer(x, activation, f"{name}_{activation}")


def inverted_residual(x, *, filters, kernel, stride, expand, norm, padding, activation, drop_rate, name):
    """One inverted-residual block (see the module docstring for its layers and names).

    Args:
        x: the input feature map.
        filters: output channels.
        kernel: depthwise kernel size.
        stride: depthwise stride.
        expand: expansion ratio; 1 leaves out the 1×1 expansion.
        norm: the family's ``Norm``.
        padding: ``"same"`` or ``"symmetric"``.
        activation: ``"relu6"``, ``"relu"`` or ``"leaky_relu"``.
        drop_rate: stochastic-depth rate on the residual branch (training only; 0 for none).
        name: the block's prefix.
    """
    inputs = x
    channels = x.shape[-1]
    if expand != 1:
        x = keras.layers.Conv2D(channels * expand, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
                                name=f"{name}_expand_conv")(x)
        x = keras.layers.BatchNormalization(epsilon=norm.epsilon, momentum=norm.momentum, name=f"{name}_expand_bn")(x)
        x = activation_layer(x, activation, f"{name}_expand_{activation}")
    x = _padded_conv(keras.layers.DepthwiseConv2D, x, kernel, stride, padding, f"{name}_dwconv")
    x = keras.layers.BatchNormalization(epsilon=norm.epsilon, momentum=norm.momentum, name=f"{name}_dwconv_bn")(x)
    x = activation_layer(x, activation, f"{name}_dwconv_{activation}")
    x = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
                            name=f"{name}_project_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=norm.epsilon, momentum=norm.momentum, name=f"{name}_project_bn")(x)
    if stride == 1 and channels == filters:
        if drop_rate:
            x = keras.layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def _padded_conv(layer, x, kernel, stride, padding, name, **kwargs):
    if padding == "symmetric" and stride > 1:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
        conv_padding = "valid"
    else:
        conv_padding = "same"
    return layer(kernel_size=kernel, strides=stride, padding=conv_padding, use_bias=False, name=name, **kwargs)(x)
