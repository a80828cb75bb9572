"""Preprocessing as data: the ``PreprocessSpec`` a model card carries, and the one function that applies it.

A spec says what a model's input is — its size, colour (RGB or grey), value scaling, resize method, and
the **face framing** it was trained on: where the five landmarks sit in its input (CelebA's aligned
framing is not UTKFace's tight crop). Training (``facezoo.data.pipeline``), ``FaceModel.predict``, face
alignment and export signatures all read it from the card, so no caller can feed a model the wrong
normalisation.

``prepare_input(image, spec)`` builds the network input from a decoded image: ``fit_to_input``
(centre crop to the input's aspect, resize with antialiasing) -> round to whole grey levels (as the
training pipeline stores uint8) -> ``normalize`` (grey conversion, scale and offset). The pipeline
applies the same two halves with caching and augmentation in between. The spec itself needs no
TensorFlow (cards are read without it); the functions import it when called.
"""
from __future__ import annotations

import dataclasses

RESIZE_METHODS = ("bilinear", "bicubic", "area", "nearest")
COLORS = ("rgb", "grey")


# How a face may be sampled when it is warped into a framing (facezoo.face.align.align_to_spec).
INTERPOLATIONS = ("bicubic", "bilinear")


@dataclasses.dataclass(frozen=True)
class FaceFraming:
    """Where a face's five landmarks sit in a model's input, as fractions of its width and height.

    Args:
        name: a short name (``"celeba_aligned"``).
        landmarks: five ``(x, y)`` fractions — left eye, right eye, nose tip, left and right mouth
            corners, "left" as seen in the image — of the input's width and height (pixel centres:
            ``x_pixel = x * width - 0.5``).
        description: how the numbers were obtained.
        interpolation: how ``facezoo.face.align.align_to_spec`` samples the photo when it warps a face into
            this framing: ``"bicubic"`` (the default) or ``"bilinear"`` (what a model trained or calibrated on
            bilinear crops, such as the first ``verify_face``, records on its card).
    """

    name: str
    landmarks: tuple
    description: str = ""
    interpolation: str = "bicubic"

    def __post_init__(self):
        points = tuple(tuple(float(v) for v in p) for p in self.landmarks)
        if len(points) != 5 or any(len(p) != 2 for p in points):
            raise ValueError(f"framing {self.name!r}: expected 5 (x, y) landmark fractions, got {self.landmarks!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"framing {self.name!r}: interpolation must be one of {INTERPOLATIONS}, "
                             f"got {self.interpolation!r}")
        object.__setattr__(self, "landmarks", points)

    def points(self, input_size) -> list[tuple[float, float]]:
        """The landmarks in pixel indices of an ``(height, width)`` input."""
        h, w = int(input_size[0]), int(input_size[1])
        return [(x * w - 0.5, y * h - 0.5) for x, y in self.landmarks]

    def to_dict(self) -> dict:
        return {"name": self.name, "landmarks": [list(p) for p in self.landmarks], "description": self.description,
                "interpolation": self.interpolation}

    @classmethod
    def from_dict(cls, d: dict) -> "FaceFraming":
        return cls(d["name"], tuple(tuple(p) for p in d["landmarks"]), d.get("description", ""),
                   d.get("interpolation", "bicubic"))


# CelebA's aligned images (img_align_celeba, 178x218; the staged copy is 89x109): the mean landmark
# positions of list_landmarks_align_celeba.txt (left eye (69, 111), right eye (108, 111), nose (88, 135),
# mouth corners (73, 152) and (104, 152) in 178x218 pixels), as fractions of the whole image. A model
# whose input has CelebA's aspect (109x89) sees the whole aligned image.
CELEBA_ALIGNED = FaceFraming(
    "celeba_aligned",
    ((0.3904, 0.5115), (0.6096, 0.5115), (0.4972, 0.6216), (0.4129, 0.6995), (0.5871, 0.6995)),
    "mean landmarks of CelebA's aligned images (list_landmarks_align_celeba.txt), fractions of 178x218")


@dataclasses.dataclass(frozen=True)
class PreprocessSpec:
    """What a model's input is; see the module docstring.

    Args:
        input_size: ``(height, width)`` of the network input.
        color: ``"rgb"`` or ``"grey"`` (one channel, ITU-R 601 luma of the RGB image).
        scale, offset: network input = pixel (0-255) * scale + offset (default: [-1, 1]).
        resize: resize method of ``fit_to_input`` (``tf.image.resize`` names).
        antialias: antialias when downscaling.
        framing: the ``FaceFraming`` of the training images after ``fit_to_input``'s centre crop to the
            input's aspect (None: not known; alignment then cannot reproduce it).
    """

    input_size: tuple
    color: str = "rgb"
    scale: float = 1 / 127.5
    offset: float = -1.0
    resize: str = "bilinear"
    antialias: bool = True
    framing: FaceFraming | None = None

    def __post_init__(self):
        size = tuple(int(v) for v in self.input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"input_size must be (height, width) of positive ints, got {self.input_size!r}")
        object.__setattr__(self, "input_size", size)
        if self.color not in COLORS:
            raise ValueError(f"color must be one of {COLORS}, got {self.color!r}")
        if self.resize not in RESIZE_METHODS:
            raise ValueError(f"resize must be one of {RESIZE_METHODS}, got {self.resize!r}")
        if isinstance(self.framing, dict):
            object.__setattr__(self, "framing", FaceFraming.from_dict(self.framing))

    @property
    def channels(self) -> int:
        return 1 if self.color == "grey" else 3

    @property
    def input_shape(self) -> tuple:
        return (*self.input_size, self.channels)

    def normalize(self, images):
        """uint8-range RGB pixels (any leading shape, last axis 3) -> the network's float32 input."""
        import tensorflow as tf

        images = tf.cast(images, tf.float32)
        if self.color == "grey":
            images = tf.image.rgb_to_grayscale(images)
        return images * self.scale + self.offset

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size)
        d["framing"] = self.framing.to_dict() if self.framing else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"preprocessing spec: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def preprocess_input(images, spec: PreprocessSpec | None = None):
    """Scales uint8-range pixels ``[0, 255]`` to the network's input (default ``[-1, 1]``, RGB)."""
    import tensorflow as tf

    if spec is not None:
        return spec.normalize(images)
    return tf.cast(images, tf.float32) * (1.0 / 127.5) - 1.0


def fit_to_input(image, size, method: str = "bilinear", antialias: bool = True):
    """Centre-crops ``image`` (H, W, C) or a batch (N, H, W, C) to the aspect of ``size`` and resizes.

    Args:
        image: uint8 or float tensor in the [0, 255] range.
        size: ``(height, width)`` of the model input.
        method: ``tf.image.resize`` method.
        antialias: antialias when downscaling.

    Returns:
        float32 tensor of spatial shape ``size``, still in [0, 255]. An image already of that size is
        returned unchanged (cast to float32), so data stored at the model size is not resampled.
    """
    import tensorflow as tf

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
        out = tf.image.resize(cropped, (th, tw), method=method, antialias=antialias)
        return tf.clip_by_value(out, 0.0, 255.0)

    same = tf.logical_and(tf.equal(crop_h, th), tf.equal(crop_w, tw))
    out = tf.cond(same, lambda: cropped, resize)
    out.set_shape(image.shape[:-3].concatenate([th, tw, image.shape[-1]]))
    return out


def prepare_input(image, spec: PreprocessSpec):
    """A decoded RGB image (H, W, 3) or batch, uint8 or float in [0, 255] -> the network input of ``spec``.

    Rounded to whole grey levels after resizing, as the training pipeline stores its images (uint8), so
    a file gives the network the input it gets in training and evaluation.
    """
    import tensorflow as tf

    fitted = fit_to_input(image, spec.input_size, method=spec.resize, antialias=spec.antialias)
    return spec.normalize(tf.round(fitted))


# ----------------------------------------------------------------------------- the same in numpy
# The exported-graph backends (ONNX Runtime, LiteRT, OpenVINO) and the TensorFlow-free ``facezoo[lite]``
# install preprocess in numpy. These functions reproduce the TensorFlow ones above: ``tf.image.resize`` with
# ``antialias=True`` is ``ScaleAndTranslate`` with a triangle kernel widened by the downscale factor (the
# weights below follow tensorflow/core/kernels/image/scale_and_translate_op.cc), computed in float32, so the
# rounded uint8 grey levels agree with TensorFlow's except for values within ~1e-4 of a half level
# (tests/test_preprocessing_numpy.py measures both).
GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale


def resize_weights(in_size: int, out_size: int, antialias: bool = True):
    """The (out_size, in_size) float32 matrix of ``tf.image.resize(method="bilinear", antialias=...)`` on one axis.

    With ``antialias=False`` TensorFlow runs ``ResizeBilinear`` (half-pixel centres, edge pixels clamped), which
    this reproduces too.
    """
    import numpy as np

    scale = np.float32(out_size) / np.float32(in_size)
    inv_scale = np.float32(1.0) / scale
    out = np.zeros((out_size, in_size), np.float32)
    if not antialias:
        for x in range(out_size):
            src = max((np.float32(x) + np.float32(0.5)) * inv_scale - np.float32(0.5), np.float32(0.0))
            lo = min(int(np.floor(src)), in_size - 1)
            hi = min(lo + 1, in_size - 1)
            frac = np.float32(src - lo)
            out[x, lo] += np.float32(1.0) - frac
            out[x, hi] += frac
        return out
    kernel_scale = max(inv_scale, np.float32(1.0))
    for x in range(out_size):
        sample = (np.float32(x) + np.float32(0.5)) * inv_scale
        if sample < 0 or sample > in_size:
            continue
        start = int(np.ceil(sample - kernel_scale - np.float32(0.5)))
        end = int(np.floor(sample + kernel_scale - np.float32(0.5)))
        start, end = min(max(start, 0), in_size - 1), min(max(end, 0), in_size - 1) + 1
        src = np.arange(start, end, dtype=np.float32)
        w = np.maximum(np.float32(0.0), np.float32(1.0) - np.abs((src + np.float32(0.5) - sample) / kernel_scale))
        total = w.sum(dtype=np.float32)
        if abs(total) >= 1000 * np.finfo(np.float32).eps:
            w = w / total
        out[x, start:end] = w
    return out


_RESIZE_CACHE: dict = {}


def resize_numpy(image, size, method: str = "bilinear", antialias: bool = True):
    """``tf.image.resize(image, size, method, antialias)`` in numpy for one (H, W, C) image; float32 out.

    Only ``bilinear`` (what every shipped card uses) is implemented; other methods raise ``ValueError``.
    """
    import numpy as np

    if method != "bilinear":
        raise ValueError(f"resize method {method!r} has no numpy implementation (only 'bilinear'); "
                         "use the keras backend for this model")
    image = np.asarray(image, np.float32)
    h, w = image.shape[:2]
    th, tw = int(size[0]), int(size[1])
    key_y, key_x = (h, th, antialias), (w, tw, antialias)
    for key in (key_y, key_x):
        if key not in _RESIZE_CACHE:
            if len(_RESIZE_CACHE) > 256:
                _RESIZE_CACHE.clear()
            _RESIZE_CACHE[key] = resize_weights(*key)
    wy, wx = _RESIZE_CACHE[key_y], _RESIZE_CACHE[key_x]
    rows = np.tensordot(wy, image, axes=(1, 0))             # (th, w, C)
    return np.einsum("xw,hwc->hxc", wx, rows, optimize=True).astype(np.float32)


def fit_to_input_numpy(image, size, method: str = "bilinear", antialias: bool = True):
    """``fit_to_input`` in numpy for one (H, W, C) image: centre crop to the aspect of ``size``, resize, clip."""
    import numpy as np

    image = np.asarray(image)
    th, tw = int(size[0]), int(size[1])
    h, w = image.shape[:2]
    crop_h = min(h, int(np.round(np.float32(w) * np.float32(th) / np.float32(tw))))
    crop_w = min(w, int(np.round(np.float32(h) * np.float32(tw) / np.float32(th))))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    cropped = image[top:top + crop_h, left:left + crop_w].astype(np.float32)
    if (crop_h, crop_w) == (th, tw):
        return cropped
    return np.clip(resize_numpy(cropped, (th, tw), method, antialias), 0.0, 255.0)


def normalize_numpy(images, spec: PreprocessSpec):
    """``spec.normalize`` in numpy: uint8-range RGB (..., 3) -> float32 network input (grey: one channel)."""
    import numpy as np

    images = np.asarray(images, np.float32)
    if spec.color == "grey":
        images = np.tensordot(images, np.asarray(GREY_WEIGHTS, np.float32), axes=(-1, 0))[..., None]
    return (images * np.float32(spec.scale) + np.float32(spec.offset)).astype(np.float32)


def prepare_input_numpy(image, spec: PreprocessSpec):
    """``prepare_input`` in numpy for one decoded (H, W, 3) image."""
    import numpy as np

    fitted = fit_to_input_numpy(image, spec.input_size, method=spec.resize, antialias=spec.antialias)
    return normalize_numpy(np.round(fitted), spec)
