"""Tiny models and synthetic data shared by the training tests and their worker script."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from facezoo.attributes import ADIENCE
from facezoo.models.dmtl import DmtlConfig
from facezoo.train.inputs import for_model


def tiny_config(heads=ADIENCE, size: int = 32, **overrides) -> DmtlConfig:
    """A ResNet-18 DMTL at width 0.125 and ``size`` px: an ordinal and a nominal head by default."""
    kwargs = dict(backbone="resnet18", input_size=size, heads=heads, width=0.125, dropout=0.0, branch_units=16)
    kwargs.update(overrides)
    return DmtlConfig(**kwargs)


def synthetic_arrays(n: int, size: int, label_space=ADIENCE, seed: int = 0):
    """``(images, labels, masks)`` numpy arrays: random images in [-1, 1], random labels, all present."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1.0, 1.0, (n, size, size, 3)).astype("float32")
    labels = {a.name: rng.integers(0, a.num_classes, n).astype("float32" if a.kind == "binary" else "int32")
              for a in label_space}
    masks = {a.name: np.ones(n, "float32") for a in label_space}
    return images, labels, masks


def synthetic_dataset(config: DmtlConfig, *, n: int, batch: int, seed: int = 0, repeat: bool = True):
    """Batches of ``synthetic_arrays`` for ``config``'s single data set, in a fixed order.

    Every pass yields the same batches in the same order, so a run resumed at an epoch boundary
    sees exactly the data an uninterrupted run sees when ``n`` is steps per epoch x ``batch``.
    Sharded by DATA under ``tf.distribute``: worker/replica ``i`` gets the ``i``-th slice of each batch.
    """
    (dataset,) = config.datasets
    size = config.input_size[0]
    label_space = [h.attribute for h in dataset.heads]
    ds = tf.data.Dataset.from_tensor_slices(synthetic_arrays(n, size, label_space, seed)).batch(batch)
    if repeat:
        ds = ds.repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return for_model(ds.with_options(options), dataset.name, config)
