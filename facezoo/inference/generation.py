"""Shipped generators: ``FaceGenerator`` (card task ``generation``) and ``FaceUpscaler`` (``super_resolution``).

    gen = facezoo.load("dcgan_face64")
    faces = gen.sample(16, seed=0, attributes={"Male": 1, "Smiling": 1})   # uint8 (16, 64, 64, 3)
    sr = facezoo.load("srgan_face_x4")
    big = sr.upscale("small_face.png")                                     # uint8 (4h, 4w, 3)

The weights file holds the generator network alone (a functional Keras model, loaded with
``safe_mode=True``); the card's ``architecture`` records ``latent_dim``, ``conditions`` (the CelebA
attributes a conditional generator takes, in order), ``condition_priors`` (how often each is on in the
training faces: the default of attributes a caller leaves unset) and, for super-resolution, ``scale``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from facezoo.errors import UsageError
from facezoo.images import describe, load_image

# An upscaled side of 4 * 512 px takes seconds and gigabytes on a CPU: larger inputs are refused.
MAX_UPSCALE_SIDE = 512


def _to_uint8(images):
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class FaceGenerator:
    """A shipped face generator (``facezoo.load`` returns it for card task ``generation``).

    Attributes:
        model: the Keras generator (inputs ``noise`` and, if conditional, ``condition``; images in [-1, 1]).
        card: its ``facezoo.zoo.ModelCard``.
        conditions: names of the attributes it is conditioned on (empty: unconditional).
        latent_dim, image_size: noise length and generated side.
        priors: ``{attribute: probability on}`` used for attributes a call leaves unset.
    """

    def __init__(self, model, card):
        self.model = model
        self.card = card
        self.conditions = tuple(card.architecture.get("conditions", ()))
        inputs = model.inputs
        self.latent_dim = int(inputs[0].shape[-1])
        if len(inputs) != 1 + bool(self.conditions) or (self.conditions and
                                                        int(inputs[1].shape[-1]) != len(self.conditions)):
            from facezoo.errors import ModelFileError
            raise ModelFileError(f"{card.name}: the card's conditions {list(self.conditions)} do not match the "
                                 f"network's inputs {[tuple(i.shape) for i in inputs]}")
        self.image_size = int(model.output.shape[1])
        self.priors = {c: float(card.architecture.get("condition_priors", {}).get(c, 0.5)) for c in self.conditions}
        signature = [tf.TensorSpec([None, self.latent_dim], tf.float32)]
        if self.conditions:
            signature.append(tf.TensorSpec([None, len(self.conditions)], tf.float32))
            self._forward = tf.function(lambda z, c: _to_uint8(model([z, c], training=False)),
                                        input_signature=signature)
        else:
            self._forward = tf.function(lambda z: _to_uint8(model(z, training=False)), input_signature=signature)

    @classmethod
    def from_file(cls, path: str, card) -> "FaceGenerator":
        """The generator in a checksum-verified ``.keras`` file with its card (what ``facezoo.load`` calls)."""
        from facezoo.models.weights import load_model_file
        return cls(load_model_file(path, card.name), card)

    def __repr__(self):
        return (f"FaceGenerator({self.card.name!r}, {self.image_size}x{self.image_size}, latent={self.latent_dim}, "
                f"conditions={list(self.conditions)})")

    def noise(self, n: int, rng) -> np.ndarray:
        """``(n, latent_dim)`` float32 standard-normal noise from a ``numpy.random.Generator``."""
        return rng.standard_normal((n, self.latent_dim)).astype(np.float32)

    def generate(self, noise, condition=None, batch_size: int = 64) -> np.ndarray:
        """uint8 faces ``(N, S, S, 3)`` for ``noise`` ``(N, latent_dim)`` and 0/1 ``condition`` ``(N, C)``."""
        noise = np.asarray(noise, np.float32)
        if noise.ndim != 2 or noise.shape[1] != self.latent_dim:
            raise UsageError(f"noise must be (N, {self.latent_dim}), got shape {noise.shape}")
        if self.conditions:
            if condition is None:
                raise UsageError(f"{self.card.name} is conditioned on {list(self.conditions)}: give a condition")
            condition = np.asarray(condition, np.float32)
            if condition.shape != (len(noise), len(self.conditions)):
                raise UsageError(f"condition must be ({len(noise)}, {len(self.conditions)}), got {condition.shape}")
        elif condition is not None:
            raise UsageError(f"{self.card.name} is not conditioned on attributes; give no condition")
        out = []
        for start in range(0, len(noise), batch_size):
            z = tf.constant(noise[start:start + batch_size])
            args = (z, tf.constant(condition[start:start + batch_size])) if self.conditions else (z,)
            out.append(self._forward(*args).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.image_size, self.image_size, 3), np.uint8)

    def condition_vector(self, attributes: dict | None, n: int, rng) -> np.ndarray | None:
        """``(n, C)`` 0/1 conditions: the given ``attributes``, the others drawn from ``priors``."""
        attributes = dict(attributes or {})
        if not self.conditions:
            if attributes:
                raise UsageError(f"{self.card.name} is not conditioned on attributes; it cannot set "
                                 f"{sorted(attributes)}")
            return None
        unknown = sorted(set(attributes) - set(self.conditions))
        if unknown:
            raise UsageError(f"attributes {unknown}: {self.card.name} is conditioned on {list(self.conditions)} only")
        columns = []
        for c in self.conditions:
            if c in attributes:
                v = attributes[c]
                if isinstance(v, str):
                    v = {"1": 1, "0": 0, "true": 1, "false": 0, "yes": 1, "no": 0}.get(v.strip().lower(), v)
                if v not in (0, 1) or isinstance(v, str):
                    raise UsageError(f"attribute {c}: give 0 or 1 (or True/False), got {attributes[c]!r}")
                columns.append(np.full(n, float(v), np.float32))
            else:
                columns.append((rng.random(n) < self.priors[c]).astype(np.float32))
        return np.stack(columns, axis=1)

    def sample(self, n: int, *, seed: int | None = None, attributes: dict | None = None,
               batch_size: int = 64) -> np.ndarray:
        """``n`` generated faces, uint8 ``(n, S, S, 3)``.

        Args:
            n: how many faces.
            seed: seed of the noise (and of unset attributes); the same seed gives the same faces.
            attributes: conditional generators only: ``{"Male": 1, "Smiling": 0}``; unset attributes
                are drawn with the training faces' frequencies (``priors``).
            batch_size: faces per forward pass.
        """
        n = _positive_int(n, "n")
        rng = np.random.default_rng(seed)
        noise = self.noise(n, rng)
        return self.generate(noise, self.condition_vector(attributes, n, rng), _positive_int(batch_size, "batch_size"))

    def grid(self, n: int, *, columns: int | None = None, **kwargs) -> np.ndarray:
        """``sample(n, ...)`` tiled into one uint8 image (``columns`` per row; default about square)."""
        from facezoo.models.gan.samples import image_grid
        faces = self.sample(n, **kwargs)
        columns = _positive_int(columns, "columns") if columns is not None else int(np.ceil(np.sqrt(n)))
        return image_grid(faces.astype(np.float32) / 127.5 - 1.0, columns)


class FaceUpscaler:
    """A shipped super-resolution model (``facezoo.load`` returns it for card task ``super_resolution``).

    Attributes:
        model: the Keras generator (any-size images in [-1, 1] -> ``scale`` times larger).
        card: its card; ``scale``: the upscaling factor.
    """

    def __init__(self, model, card):
        self.model = model
        self.card = card
        self.scale = int(card.architecture.get("scale", 4))
        self._forward = tf.function(
            lambda x: _to_uint8(model(tf.cast(x, tf.float32) / 127.5 - 1.0, training=False)),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)], reduce_retracing=True)

    @classmethod
    def from_file(cls, path: str, card) -> "FaceUpscaler":
        """The model in a checksum-verified ``.keras`` file with its card (what ``facezoo.load`` calls)."""
        from facezoo.models.weights import load_model_file
        return cls(load_model_file(path, card.name), card)

    def __repr__(self):
        return f"FaceUpscaler({self.card.name!r}, x{self.scale})"

    def upscale_batch(self, images, batch_size: int = 32) -> np.ndarray:
        """uint8 ``(N, h, w, 3)`` -> uint8 ``(N, h * scale, w * scale, 3)``."""
        a = np.asarray(images)
        if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise UsageError(f"upscale_batch takes uint8 (N, h, w, 3), got {a.dtype} {a.shape}")
        out = [self._forward(tf.constant(a[s:s + batch_size])).numpy() for s in range(0, len(a), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, a.shape[1] * self.scale, a.shape[2] * self.scale, 3),
                                                        np.uint8)

    def upscale(self, images, *, max_side: int = MAX_UPSCALE_SIDE):
        """Super-resolves one image or a list of them (paths, bytes, arrays, PIL images).

        Returns:
            uint8 ``(h * scale, w * scale, 3)`` for one input, a list of them for a list.

        Raises:
            ImageError: an input is not a readable image; UsageError: one is larger than ``max_side``.
        """
        single = not isinstance(images, (list, tuple))
        out = []
        for item in [images] if single else list(images):
            image = load_image(item)
            if max(image.shape[:2]) > max_side:
                raise UsageError(f"{describe(item)}: {image.shape[1]}x{image.shape[0]} is larger than {max_side} px "
                                 f"on a side; {self.card.name} upscales small faces (x{self.scale})")
            out.append(self.upscale_batch(image[None])[0])
        return out[0] if single else out
