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


@dataclasses.dataclass(frozen=True)
class FaceFraming:
    """Where a face's five landmarks sit in a model's input, as fractions of its width and height.

    Args:
        name: a short name (``"celeba_aligned"``).
        landmarks: five ``(x, y)`` fractions — left eye, right eye, nose tip, left and right mouth
            corners, "left" as seen in the image — of the input's width and height (pixel centres:
            ``x_pixel = x * width - 0.5``).
        description: how the numbers were obtained.
    """

    name: str
    landmarks: tuple
    description: str = ""

    def __post_init__(self):
        points = tuple(tuple(float(v) for v in p) for p in self.landmarks)
        if len(points) != 5 or any(len(p) != 2 for p in points):
            raise ValueError(f"framing {self.name!r}: expected 5 (x, y) landmark fractions, got {self.landmarks!r}")
        object.__setattr__(self, "landmarks", points)

    def points(self, input_size) -> list[tuple[float, float]]:
        """The landmarks in pixel indices of an ``(height, width)`` input."""
        h, w = int(input_size[0]), int(input_size[1])
        return [(x * w - 0.5, y * h - 0.5) for x, y in self.landmarks]

    def to_dict(self) -> dict:
        return {"name": self.name, "landmarks": [list(p) for p in self.landmarks], "description": self.description}

    @classmethod
    def from_dict(cls, d: dict) -> "FaceFraming":
        return cls(d["name"], tuple(tuple(p) for p in d["landmarks"]), d.get("description", ""))


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
