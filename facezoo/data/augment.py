"""In-graph face augmentation: flips, small affine warps and colour jitter, landmarks kept in step.

Every function works on one image (H, W, C) in the [0, 255] range (uint8 or float) inside
``tf.data`` ``map`` and returns float32 in [0, 255]. Landmarks are (5, 2) (x, y) pixel indices in
FaceRecord order (image-left eye, image-right eye, nose, image-left and image-right mouth corner)
and are moved exactly as the pixels are.

Randomness is stateless: each function takes an optional ``seed`` (shape-[2] int tensor). With a
seed the result is reproducible whatever the thread interleaving of a parallel ``map``; without
one, a seed is drawn from the global generator. ``Augmenter`` splits one seed among its steps and
the pipeline feeds it per-image seeds from ``tf.data.Dataset.random``, so a seeded pipeline is
reproducible and still different every epoch.
"""
from __future__ import annotations

import math
from typing import Mapping

import tensorflow as tf

# Index of each landmark after a horizontal flip: the eyes and the mouth corners change sides.
LANDMARK_FLIP_ORDER = (1, 0, 2, 4, 3)

DEFAULT_AUGMENT = {
    "flip": {"probability": 0.5, "label_pairs": {}},
    "affine": {"probability": 1.0, "rotation": 10.0, "translate": 0.06, "scale": (0.9, 1.1)},
    "color": {"probability": 0.8, "brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.02},
}


def _seeds(seed, n: int):
    """``n`` independent stateless seeds (an (n, 2) int tensor) from ``seed`` or the global RNG."""
    if seed is None:
        return tf.random.uniform([n, 2], maxval=tf.int32.max, dtype=tf.int32)
    return tf.random.split(tf.cast(seed, tf.int32), n)


def _uniform(seed, low=0.0, high=1.0, shape=()):
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def _float(image):
    return tf.cast(image, tf.float32)


def random_flip(image, landmarks=None, labels=None, *, probability: float = 0.5,
                label_pairs: Mapping[str, str] | None = None, seed=None):
    """Mirrors the image left-right with ``probability``.

    Args:
        image: (H, W, C) image in [0, 255].
        landmarks: optional (5, 2) points; x becomes ``W - 1 - x`` and left/right points swap
            (``LANDMARK_FLIP_ORDER``) so index 0 is again the image-left eye.
        labels: optional dict name -> value (any nested structure); the values of each pair in
            ``label_pairs`` are exchanged on a flip.
        probability: chance of flipping.
        label_pairs: left -> right attribute names that trade places in a mirror image (e.g.
            ``{"left_eye_closed": "right_eye_closed"}``); empty for CelebA.
        seed: optional stateless seed.

    Returns:
        ``(image, landmarks, labels)``; landmarks and labels are None when not given.
    """
    image = _float(image)
    flip = _uniform(_seeds(seed, 1)[0]) < probability
    out = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
    out.set_shape(image.shape)
    if landmarks is not None:
        width = tf.cast(tf.shape(image)[1], tf.float32)
        landmarks = tf.cast(landmarks, tf.float32)
        mirrored = tf.gather(tf.stack([width - 1.0 - landmarks[:, 0], landmarks[:, 1]], axis=1),
                             LANDMARK_FLIP_ORDER)
        landmarks = tf.where(flip, mirrored, landmarks)
    if labels is not None and label_pairs:
        swapped = dict(labels)
        for left, right in label_pairs.items():
            if left not in labels or right not in labels:
                raise KeyError(f"random_flip: label pair ({left!r}, {right!r}) not in labels {sorted(labels)}")
            swapped[left], swapped[right] = labels[right], labels[left]
        labels = tf.nest.map_structure(lambda a, b: tf.where(flip, a, b), swapped, dict(labels))
    return out, landmarks, labels


def random_affine(image, landmarks=None, *, rotation: float = 10.0, translate: float = 0.06,
                  scale=(0.9, 1.1), fill_mode: str = "reflect", seed=None):
    """Rotates, scales and shifts the image about its centre by small random amounts.

    Args:
        image: (H, W, C) image in [0, 255].
        landmarks: optional (N, 2) points, mapped with the same transform.
        rotation: maximum rotation in degrees (uniform in ``[-rotation, rotation]``).
        translate: maximum shift as a fraction of width/height (uniform in ``[-t, t]``).
        scale: ``(low, high)`` zoom factor range.
        fill_mode: how pixels from outside the image are filled: ``reflect``, ``nearest``,
            ``wrap`` or ``constant`` (black).
        seed: optional stateless seed.

    Returns:
        ``(image, landmarks)``; landmarks is None when not given.
    """
    image = _float(image)
    s = _seeds(seed, 4)
    angle = _uniform(s[0], -rotation, rotation) * (math.pi / 180.0)
    zoom = _uniform(s[1], scale[0], scale[1])
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    tx = _uniform(s[2], -translate, translate) * w
    ty = _uniform(s[3], -translate, translate) * h
    return _warp(image, landmarks, angle, zoom, tx, ty, fill_mode)


def _warp(image, landmarks, angle, zoom, tx, ty, fill_mode):
    """Applies ``p_out = c + t + zoom * R(angle) (p_in - c)`` to pixels and landmarks."""
    shape = tf.shape(image)
    cx = (tf.cast(shape[1], tf.float32) - 1.0) / 2.0
    cy = (tf.cast(shape[0], tf.float32) - 1.0) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    # ImageProjectiveTransformV3 maps each output pixel to the input point it samples: the inverse.
    a00, a01, a10, a11 = cos / zoom, sin / zoom, -sin / zoom, cos / zoom
    ox, oy = cx + tx, cy + ty
    inverse = tf.stack([a00, a01, cx - a00 * ox - a01 * oy,
                        a10, a11, cy - a10 * ox - a11 * oy, 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=inverse[None], output_shape=shape[:2], fill_value=0.0,
        interpolation="BILINEAR", fill_mode=fill_mode.upper())[0]
    out.set_shape(image.shape)
    if landmarks is not None:
        p = tf.cast(landmarks, tf.float32)
        dx, dy = p[:, 0] - cx, p[:, 1] - cy
        landmarks = tf.stack([ox + zoom * (cos * dx - sin * dy), oy + zoom * (sin * dx + cos * dy)], axis=1)
    return out, landmarks


def color_jitter(image, *, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                 hue: float = 0.02, seed=None):
    """Random brightness, contrast and saturation factors in ``[1 - x, 1 + x]`` and a hue shift.

    Args:
        image: (H, W, 3) RGB image in [0, 255].
        brightness: maximum relative change of brightness (multiplicative).
        contrast: maximum relative change of contrast about the mean.
        saturation: maximum relative change of saturation.
        hue: maximum hue rotation as a fraction of the colour wheel.
        seed: optional stateless seed.

    Returns:
        float32 image in [0, 255].
    """
    s = _seeds(seed, 4)
    x = _float(image) / 255.0
    x = x * _uniform(s[0], 1.0 - brightness, 1.0 + brightness)
    x = tf.image.adjust_contrast(x, _uniform(s[1], 1.0 - contrast, 1.0 + contrast))
    x = tf.clip_by_value(x, 0.0, 1.0)
    x = tf.image.adjust_saturation(x, _uniform(s[2], 1.0 - saturation, 1.0 + saturation))
    x = tf.image.adjust_hue(x, _uniform(s[3], -hue, hue))
    return tf.clip_by_value(x, 0.0, 1.0) * 255.0


_OPS = {
    "flip": {"probability", "label_pairs"},
    "affine": {"probability", "rotation", "translate", "scale", "fill_mode"},
    "color": {"probability", "brightness", "contrast", "saturation", "hue"},
}


class Augmenter:
    """Applies the configured augmentations in a fixed order: flip, affine, colour.

    Args:
        config: op name -> keyword arguments of that op plus ``probability`` (the chance the op
            runs on an image; for ``flip`` it is the flip probability itself). Ops missing from
            the config, or set to None, are skipped. See ``DEFAULT_AUGMENT``.

    Call it as ``augmenter(image, landmarks=None, labels=None, seed=None)``; it returns
    ``(image, landmarks, labels)`` with the image float32 in [0, 255] — the contract
    ``facezoo.data.pipeline`` expects of any ``augment`` callable.
    """

    def __init__(self, config: Mapping):
        unknown = set(config) - set(_OPS)
        if unknown:
            raise ValueError(f"Augmenter: unknown ops {sorted(unknown)}; known: {sorted(_OPS)}")
        self.config = {}
        for name, params in config.items():
            if params is None:
                continue
            bad = set(params) - _OPS[name]
            if bad:
                raise ValueError(f"Augmenter: {name!r} has no option(s) {sorted(bad)}; "
                                 f"known: {sorted(_OPS[name])}")
            self.config[name] = dict(params)

    def __call__(self, image, landmarks=None, labels=None, seed=None):
        static_shape = image.shape
        image = _float(image)
        s = _seeds(seed, 2 * len(_OPS))
        if "flip" in self.config:
            image, landmarks, labels = random_flip(image, landmarks, labels, seed=s[0], **self.config["flip"])
        if "affine" in self.config:
            params = dict(self.config["affine"])
            p = params.pop("probability", 1.0)
            image, landmarks = _sometimes(
                p, s[1], lambda im, lm: random_affine(im, lm, seed=s[2], **params), image, landmarks)
        if "color" in self.config:
            params = dict(self.config["color"])
            p = params.pop("probability", 1.0)
            image, _ = _sometimes(p, s[3], lambda im, lm: (color_jitter(im, seed=s[4], **params), lm),
                                  image, None)
        image = tf.clip_by_value(image, 0.0, 255.0)
        image.set_shape(static_shape)
        return image, landmarks, labels


def _sometimes(probability, seed, fn, image, landmarks):
    """Runs ``fn(image, landmarks) -> (image, landmarks)`` with ``probability``, else passes through."""
    run = _uniform(seed) < probability
    if landmarks is None:
        return tf.cond(run, lambda: fn(image, None)[0], lambda: image), None
    return tf.cond(run, lambda: fn(image, landmarks), lambda: (image, tf.cast(landmarks, tf.float32)))


def make_augment(config: Mapping | None = None) -> Augmenter:
    """Builds an ``Augmenter`` from a config dict (``DEFAULT_AUGMENT`` when None)."""
    return Augmenter(DEFAULT_AUGMENT if config is None else config)
