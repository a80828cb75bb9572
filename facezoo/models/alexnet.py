"""AlexNet (Krizhevsky et al. 2012) in the single-tower form, in the ``keras.applications`` style.

The 2012 network split its layers over two GPUs (96-256-384-384-256 channels). Like torchvision we
build the single-tower variant of Krizhevsky 2014 ("One weird trick for parallelizing convolutional
neural networks", arXiv:1404.5997): convolutions 64-11/4, 192-5, 384-3, 256-3, 256-3, max pools
3/2 after the first, second and fifth, then the 4096-4096-classes classifier. Padding is
torchvision's (2 on the first convolution, "same" on the others), so at 224×224 the last feature
map is 6×6×256 — the 9216 inputs of ``fc1``; torchvision's adaptive average pool to 6×6 is then the
identity and is left out.

With ``include_top`` the input is therefore fixed at 224×224 (like ``keras.applications.VGG16``);
without it any side of at least 63 pixels works (the smallest that leaves a 1×1 map after
``pool5``). ``batch_norm=True`` adds BatchNorm after every convolution; it is not in the original.
"""
from __future__ import annotations

import keras

from facezoo.models import backbone as bb

# conv2..conv5 after the stem: (filters, kernel, max pool 3/2 after it)
FEATURES = ((192, 5, True), (384, 3, False), (256, 3, False), (256, 3, True))
FC_UNITS = (4096, 4096)
DROPOUT = 0.5
INPUT_SIZE = (224, 224, 3)
MIN_SIZE = 63
# Trainable parameters at 224x224x3 with the 1000-class top: torchvision ``alexnet``
# (AlexNet_Weights.IMAGENET1K_V1, num_params), the single-tower net of arXiv:1404.5997.
PUBLISHED_PARAMS = {"alexnet": 61_100_840}


def _pool(x, name):
    return keras.layers.MaxPooling2D(3, strides=2, name=name)(x)


def alexnet(*, include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", width=1.0, activation="relu",
            batch_norm=False):
    """Builds AlexNet (single tower), named ``alexnet`` (``alexnet_bn`` with ``batch_norm``).

    Args:
        include_top: add the flatten, 4096-4096 (dropout 0.5) and ``classes``-way classifier; the
            input must then be 224×224.
        weights: None (random), a weights file path, or a pretrained name registered in ``facezoo.zoo``.
        input_tensor: optional Keras tensor to build on.
        input_shape: ``(H, W, C)``; default ``(224, 224, 3)``. Without the top, sides >= 63 (or None).
        pooling: with ``include_top=False``: None (4-D feature map), ``"avg"`` or ``"max"``.
        classes: classifier size when ``include_top``.
        classifier_activation: activation of the classifier (None for logits).
        width: multiplier for the convolution channels and the hidden Dense widths.
        activation: ``"relu"`` or ``"leaky_relu"`` (LeakyReLU 0.2), in every layer.
        batch_norm: BatchNorm after each convolution (not in the original).

    Returns:
        A functional ``keras.Model``.
    """
    model_name = "alexnet_bn" if batch_norm else "alexnet"
    input_shape = bb.check_arguments(
        model_name, include_top=include_top, weights=weights, input_shape=input_shape, pooling=pooling,
        classes=classes, width=width, activation=activation, min_size=MIN_SIZE, fixed_size=INPUT_SIZE,
        input_tensor=input_tensor)

    inputs = bb.model_input(input_tensor, input_shape)
    x = keras.layers.ZeroPadding2D(2, name="conv1_pad")(inputs)
    x = bb.conv_act(x, bb.scaled(64, width), 11, strides=4, padding="valid", activation=activation,
                    batch_norm=batch_norm, name="conv1")
    x = _pool(x, "pool1")
    for i, (filters, kernel, pool) in enumerate(FEATURES, start=2):
        x = bb.conv_act(x, bb.scaled(filters, width), kernel, activation=activation,
                        batch_norm=batch_norm, name=f"conv{i}")
        if pool:
            x = _pool(x, f"pool{i}")
    x = bb.fully_connected_top(
        x, include_top=include_top, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, units=[bb.scaled(u, width) for u in FC_UNITS],
        dropout=DROPOUT, activation=activation)
    return bb.finish(model_name, inputs, x, weights)
