"""Tiny GAN models and synthetic pipeline-shaped data shared by the GAN task tests and their worker script."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

CONDITIONS = ("Male", "Smiling")


def tiny_dcgan_config(conditional: bool = False) -> dict:
    """A 16 px DCGAN with 8-channel networks and 8-d noise."""
    return {"latent_dim": 8, "image_size": 16, "generator_filters": 8, "discriminator_filters": 8,
            "conditions": CONDITIONS if conditional else (), "label_smoothing": 0.1}


def tiny_srgan_config() -> dict:
    """A ×4 SRGAN from 4 px to 16 px with one residual block."""
    return {"scale": 4, "hr_size": 16, "generator_filters": 8, "num_blocks": 1, "discriminator_filters": 4,
            "discriminator_units": 8}


def pipeline_like(n: int, size: int, batch: int, *, seed: int = 0, repeat: bool = True) -> tf.data.Dataset:
    """``(images, labels, masks)`` batches as ``facezoo.data.pipeline`` yields them, in a fixed order.

    Images are smooth random fields in [-1, 1] (learnable by a super-resolution network); labels are
    the binary ``CONDITIONS``. Sharded by DATA under ``tf.distribute``.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1.0, 1.0, (n, 4, 4, 3)).astype("float32")
    images = tf.clip_by_value(tf.image.resize(coarse, (size, size), method="bilinear"), -1.0, 1.0).numpy()
    labels = {c: rng.integers(0, 2, n).astype("float32") for c in CONDITIONS}
    masks = {c: np.ones(n, "float32") for c in CONDITIONS}
    ds = tf.data.Dataset.from_tensor_slices((images, labels, masks)).batch(batch, drop_remainder=True)
    if repeat:
        ds = ds.repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
