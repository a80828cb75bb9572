"""In-graph face augmentation: flips, affine warps, colour, blur, sharpening and GridMask.

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


def _depthwise(image, kernel):
    """Convolves every channel of (H, W, C) ``image`` with the (k, k) ``kernel``, edges mirrored."""
    k = kernel.shape[0]
    pad = k // 2
    x = tf.pad(image[None], [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
    channels = image.shape[-1] or tf.shape(image)[-1]
    filters = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(x, filters, [1, 1, 1, 1], "VALID")[0]


def _gaussian_kernel(sigma, size: int):
    x = tf.range(size, dtype=tf.float32) - (size - 1) / 2.0
    g = tf.exp(-0.5 * tf.square(x / sigma))
    g = g / tf.reduce_sum(g)
    return g[:, None] * g[None, :]


def gaussian_blur(image, *, sigma=(0.1, 1.5), seed=None):
    """Blurs with a Gaussian of random standard deviation in ``sigma`` (pixels).

    Models out-of-focus and low-resolution faces. The kernel spans +-3 of the largest sigma.
    """
    image = _float(image)
    size = 2 * math.ceil(3 * sigma[1]) + 1
    std = _uniform(_seeds(seed, 1)[0], sigma[0], sigma[1])
    out = _depthwise(image, _gaussian_kernel(std, size))
    out.set_shape(image.shape)
    return out


def motion_blur(image, *, max_length: int = 9, seed=None):
    """Blurs along a line of random direction and random length in ``[1, max_length]`` pixels.

    Models camera or subject motion; the kernel weights each cell by its distance to the line
    segment through the kernel centre (anti-aliased, sums to 1).
    """
    image = _float(image)
    s = _seeds(seed, 2)
    size = max_length if max_length % 2 else max_length + 1
    length = _uniform(s[0], 1.0, float(max_length))
    angle = _uniform(s[1], 0.0, math.pi)
    r = tf.range(size, dtype=tf.float32) - (size - 1) / 2.0
    y, x = tf.meshgrid(r, r, indexing="ij")
    along = x * tf.cos(angle) + y * tf.sin(angle)
    across = -x * tf.sin(angle) + y * tf.cos(angle)
    weight = tf.nn.relu(1.0 - tf.abs(across)) * tf.clip_by_value(length / 2.0 + 0.5 - tf.abs(along), 0.0, 1.0)
    out = _depthwise(image, weight / tf.reduce_sum(weight))
    out.set_shape(image.shape)
    return out


def unsharp(image, *, amount=(0.3, 1.0), sigma: float = 1.0, seed=None):
    """Sharpens: ``image + a * (image - gaussian(image))`` with ``a`` uniform in ``amount``."""
    image = _float(image)
    blurred = _depthwise(image, _gaussian_kernel(tf.constant(sigma), 2 * math.ceil(3 * sigma) + 1))
    a = _uniform(_seeds(seed, 1)[0], amount[0], amount[1])
    out = tf.clip_by_value(image + a * (image - blurred), 0.0, 255.0)
    out.set_shape(image.shape)
    return out


def grid_mask(image, *, d_range=(96, 224), keep_ratio: float = 0.6, reference_size: int = 224,
              fill: float = 0.0, seed=None):
    """GridMask (Chen et al. 2020): blanks a regular grid of squares, keeping ``keep_ratio`` of pixels.

    The grid unit ``d`` is uniform in ``d_range`` given for ``reference_size`` px images and
    scaled to this image's shorter side (the Adience setting: 96..224 at 224 px). In each d x d
    unit a square of side ``d * sqrt(1 - keep_ratio)`` is filled, so ``keep_ratio`` is the kept
    area of each whole unit; the grid has a random offset (and is not rotated).

    Args:
        image: (H, W, C) image in [0, 255].
        d_range: ``(low, high)`` grid unit in pixels at ``reference_size``.
        keep_ratio: share of pixels kept.
        reference_size: image side for which ``d_range`` is given.
        fill: value of the blanked pixels.
        seed: optional stateless seed.
    """
    image = _float(image)
    s = _seeds(seed, 3)
    shape = tf.shape(image)
    scale = tf.cast(tf.minimum(shape[0], shape[1]), tf.float32) / float(reference_size)
    low = tf.maximum(2.0, d_range[0] * scale)
    d = tf.floor(_uniform(s[0], low, tf.maximum(low, d_range[1] * scale) + 1.0))
    side = tf.round(d * math.sqrt(1.0 - keep_ratio))
    offset = tf.floor(_uniform(s[1], 0.0, 1.0, [2]) * d)
    ys = tf.math.floormod(tf.range(tf.cast(shape[0], tf.float32)) + offset[0], d) < side
    xs = tf.math.floormod(tf.range(tf.cast(shape[1], tf.float32)) + offset[1], d) < side
    blank = tf.logical_and(ys[:, None], xs[None, :])[:, :, None]
    out = tf.where(blank, tf.cast(fill, tf.float32), image)
    out.set_shape(image.shape)
    return out


_OPS = {  # in the order Augmenter applies them: geometry, colour, optics, occlusion last
    "flip": {"probability", "label_pairs"},
    "affine": {"probability", "rotation", "translate", "scale", "fill_mode"},
    "color": {"probability", "brightness", "contrast", "saturation", "hue"},
    "gaussian_blur": {"probability", "sigma"},
    "motion_blur": {"probability", "max_length"},
    "unsharp": {"probability", "amount", "sigma"},
    "grid_mask": {"probability", "final_probability", "schedule_steps", "d_range", "keep_ratio",
                  "reference_size", "fill"},
}
_IMAGE_OPS = {"color": color_jitter, "gaussian_blur": gaussian_blur, "motion_blur": motion_blur,
              "unsharp": unsharp, "grid_mask": grid_mask}


class Augmenter:
    """Applies the configured augmentations in a fixed order (the order of ``_OPS``).

    Args:
        config: op name -> keyword arguments of that op plus ``probability`` (the chance the op
            runs on an image; for ``flip`` it is the flip probability itself). Ops missing from
            the config, or set to None, are skipped. See ``DEFAULT_AUGMENT``. ``grid_mask`` may
            also ramp its probability linearly from ``probability`` to ``final_probability``
            over ``schedule_steps`` training steps (the Adience recipe: 0.6 -> 0.8); the
            current value lives in the ``grid_mask_probability`` variable, which the pipeline
            reads as it runs, and ``set_step`` moves it.

    Call it as ``augmenter(image, landmarks=None, labels=None, seed=None)``; it returns
    ``(image, landmarks, labels)`` with the image float32 in [0, 255] — the contract
    ``facezoo.data.pipeline`` expects of any ``augment`` callable.
    """

    def __init__(self, config: Mapping):
        unknown = set(config) - set(_OPS)
        if unknown:
            raise ValueError(f"Augmenter: unknown ops {sorted(unknown)}; known: {sorted(_OPS)}")
        self.config = {}
        for name in _OPS:  # applied in _OPS order, whatever the order of the config
            params = config.get(name)
            if params is None:
                continue
            bad = set(params) - _OPS[name]
            if bad:
                raise ValueError(f"Augmenter: {name!r} has no option(s) {sorted(bad)}; "
                                 f"known: {sorted(_OPS[name])}")
            self.config[name] = dict(params)
        grid = self.config.get("grid_mask", {})
        self._grid_schedule = (float(grid.get("probability", 1.0)),
                               float(grid.get("final_probability", grid.get("probability", 1.0))),
                               int(grid.get("schedule_steps", 0)))
        self.grid_mask_probability = (tf.Variable(self._grid_schedule[0], trainable=False, dtype=tf.float32,
                                                  name="grid_mask_probability") if grid else None)

    def set_step(self, step: int):
        """Moves the GridMask probability along its schedule to training step ``step``."""
        if self.grid_mask_probability is None:
            return
        start, final, steps = self._grid_schedule
        progress = 1.0 if steps <= 0 else min(max(step, 0) / steps, 1.0)
        self.grid_mask_probability.assign(start + (final - start) * progress)

    def __call__(self, image, landmarks=None, labels=None, seed=None):
        static_shape = image.shape
        image = _float(image)
        seeds = _seeds(seed, 2 * len(_OPS))
        for i, (name, params) in enumerate(self.config.items()):
            run_seed, op_seed = seeds[2 * i], seeds[2 * i + 1]
            params = dict(params)
            if name == "flip":
                image, landmarks, labels = random_flip(image, landmarks, labels, seed=op_seed, **params)
                continue
            probability = params.pop("probability", 1.0)
            if name == "affine":
                image, landmarks = _sometimes(
                    probability, run_seed,
                    lambda im, lm, p=params, s=op_seed: random_affine(im, lm, seed=s, **p), image, landmarks)
                continue
            if name == "grid_mask":
                probability = self.grid_mask_probability
                for key in ("final_probability", "schedule_steps"):
                    params.pop(key, None)
            op = _IMAGE_OPS[name]
            image, _ = _sometimes(probability, run_seed,
                                  lambda im, lm, op=op, p=params, s=op_seed: (op(im, seed=s, **p), lm), image, None)
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
