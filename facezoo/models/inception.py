"""GoogLeNet (Szegedy et al. 2015, "Going deeper with convolutions") with BatchNorm, without the
auxiliary classifiers, in the ``keras.applications`` style.

Each convolution is torchvision's ``BasicConv2d``: convolution without bias, BatchNorm (epsilon
1e-3), activation. The stem is 7×7/2 convolution, 3×3/2 max pool, 1×1 and 3×3 convolutions, 3×3/2
max pool; then the inception blocks 3a..5b (``BLOCKS``, the paper's Table 1), with stride-2 max pools
after 3b and 4e (``POOL_AFTER``), global average pooling, dropout and the classifier.

An inception block concatenates four branches: 1×1; 1×1 reduce then 3×3; 1×1 reduce then the
paper's "5×5" branch; 3×3/1 max pool then a 1×1 projection. We take torchvision's 3×3 kernel for
the "5×5" branch (torchvision kept it for its pretrained weights; ``BRANCH3_KERNEL``): it is what
the published 6,624,904-parameter count measures, and a smaller, cheaper branch. Max pools use
"same" padding, which equals torchvision's ``ceil_mode=True`` on even sides (all of them at 224×224);
the first convolution pads 3 on every side as torchvision does.

Any input side of at least 32 works, with or without the top (global pooling sizes the classifier).
"""
from __future__ import annotations

import keras

from facezoo.models import backbone as bb

# block -> (1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool projection) output channels
BLOCKS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# block -> (name, kernel) of the stride-2 max pool that follows it; torchvision's kernels (the paper's
# Table 1 has 3×3 before 5a too: no parameters change)
POOL_AFTER = {"3b": ("pool3", 3), "4e": ("pool4", 2)}
BRANCH3_KERNEL = 3
DROPOUT = 0.4  # the paper's 40 %; torchvision uses 0.2
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.9
# Trainable parameters at 224x224x3 with the 1000-class top, no auxiliary heads: torchvision
# ``googlenet`` (GoogLeNet_Weights.IMAGENET1K_V1, num_params), BN moving statistics excluded.
PUBLISHED_PARAMS = {"inception": 6_624_904}


def basic_conv(x, filters, kernel, activation, name, strides=1, padding="same"):
    """Convolution (no bias), BatchNorm, activation: ``{name}_conv``, ``{name}_bn``, ``{name}_{activation}``."""
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return bb.act(x, activation, f"{name}_{activation}")


def inception_block(x, filters, activation, name):
    """The four parallel branches of one inception block, concatenated along channels.

    Args:
        x: input feature map.
        filters: ``(1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool projection)`` channels.
        activation: ``"relu"`` or ``"leaky_relu"``.
        name: block prefix, e.g. ``inception3a``.

    Returns:
        The concatenated feature map (``filters[0] + filters[2] + filters[4] + filters[5]`` channels).
    """
    b1, b2_reduce, b2, b3_reduce, b3, b4 = filters
    branch1 = basic_conv(x, b1, 1, activation, f"{name}_branch1")
    branch2 = basic_conv(x, b2_reduce, 1, activation, f"{name}_branch2_reduce")
    branch2 = basic_conv(branch2, b2, 3, activation, f"{name}_branch2")
    branch3 = basic_conv(x, b3_reduce, 1, activation, f"{name}_branch3_reduce")
    branch3 = basic_conv(branch3, b3, BRANCH3_KERNEL, activation, f"{name}_branch3")
    branch4 = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_branch4_pool")(x)
    branch4 = basic_conv(branch4, b4, 1, activation, f"{name}_branch4")
    return keras.layers.Concatenate(name=f"{name}_concat")([branch1, branch2, branch3, branch4])


def inception(*, include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", width=1.0, activation="relu"):
    """Builds GoogLeNet with BatchNorm (torchvision's ``googlenet`` without aux heads), named ``inception``.

    Args:
        include_top: add global average pooling, dropout 0.4 and a ``classes``-way Dense classifier.
        weights: None (random), a weights file path, or a pretrained name registered in ``facezoo.zoo``.
        input_tensor: optional Keras tensor to build on.
        input_shape: ``(H, W, C)``; default ``(224, 224, 3)``; sides >= 32, or None without a top.
        pooling: with ``include_top=False``: None (4-D feature map), ``"avg"`` or ``"max"``.
        classes: classifier size when ``include_top``.
        classifier_activation: activation of the classifier (None for logits).
        width: channel multiplier for every convolution.
        activation: ``"relu"`` or ``"leaky_relu"`` (LeakyReLU 0.2).

    Returns:
        A functional ``keras.Model``.
    """
    model_name = "inception"
    input_shape = bb.check_arguments(
        model_name, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, width=width, activation=activation, input_tensor=input_tensor)

    inputs = bb.model_input(input_tensor, input_shape)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = basic_conv(x, bb.scaled(64, width), 7, activation, "conv1", strides=2, padding="valid")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = basic_conv(x, bb.scaled(64, width), 1, activation, "conv2")
    x = basic_conv(x, bb.scaled(192, width), 3, activation, "conv3")
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    for block, filters in BLOCKS.items():
        x = inception_block(x, [bb.scaled(f, width) for f in filters], activation, f"inception{block}")
        if block in POOL_AFTER:
            pool_name, kernel = POOL_AFTER[block]
            x = keras.layers.MaxPooling2D(kernel, strides=2, padding="same", name=pool_name)(x)
    x = bb.top(x, include_top=include_top, pooling=pooling, classes=classes,
               classifier_activation=classifier_activation, dropout=DROPOUT)
    return bb.finish(model_name, inputs, x, weights)
