"""The one preprocessing path shared by training, evaluation, ``predict`` and exported models.

A face crop of any size is centre-cropped to the model's aspect ratio, resized with antialiasing
to the model's input size (``fit_to_input``), then scaled to [-1, 1] (``preprocess_input``). The
training pipeline, ``facezoo.load(...).predict`` and the serving signatures all call these two
functions, so a served model answers exactly as the Python one does.
"""
from __future__ import annotations

import tensorflow as tf

PREPROCESSING = {"function": "facezoo.preprocess.preprocess_input", "scale": 1 / 127.5, "offset": -1.0,
                 "resize": "facezoo.preprocess.fit_to_input (centre crop to aspect, bilinear, antialias)"}


def preprocess_input(images):
    """Scales uint8-range pixels ``[0, 255]`` to ``[-1, 1]`` float32 (any leading shape)."""
    return tf.cast(images, tf.float32) * (1.0 / 127.5) - 1.0


def fit_to_input(image, size):
    """Centre-crops ``image`` (H, W, C) or a batch (N, H, W, C) to the aspect of ``size`` and resizes.

    Args:
        image: uint8 or float tensor in the [0, 255] range.
        size: ``(height, width)`` of the model input.

    Returns:
        float32 tensor of spatial shape ``size``, still in [0, 255]. An image already of that size is
        returned unchanged (cast to float32), so data stored at the model size is not resampled.
    """
    image = tf.convert_to_tensor(image)
    th, tw = int(size[0]), int(size[1])
    shape = tf.shape(image)
    h, w = shape[-3], shape[-2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    # Largest crop with the target aspect ratio.
    crop_h = tf.minimum(h, tf.cast(tf.round(wf * th / tw), tf.int32))
    crop_w = tf.minimum(w, tf.cast(tf.round(hf * tw / th), tf.int32))
    top = (h - crop_h) // 2
    left = (w - crop_w) // 2
    cropped = image[..., top:top + crop_h, left:left + crop_w, :]
    cropped = tf.cast(cropped, tf.float32)

    def resize():
        out = tf.image.resize(cropped, (th, tw), method="bilinear", antialias=True)
        return tf.clip_by_value(out, 0.0, 255.0)

    same = tf.logical_and(tf.equal(crop_h, th), tf.equal(crop_w, tw))
    out = tf.cond(same, lambda: cropped, resize)
    out.set_shape(image.shape[:-3].concatenate([th, tw, image.shape[-1]]))
    return out
