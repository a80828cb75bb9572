"""Tiny models and synthetic data shared by the training tests and their worker script."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from facezoo.attributes import ADIENCE
from facezoo.models.dmtl import DmtlConfig
from facezoo.tasks.dmtl import for_model


def tiny_config(heads=ADIENCE, size: int = 32, **overrides) -> DmtlConfig:
    """``tests.helpers.tiny_config`` with Adience's heads (an ordinal and a nominal one) at ``size`` px."""
    from tests.helpers import tiny_config as shared_tiny_config
    name = getattr(heads, "name", "main")  # DmtlConfig(heads=[...]) names its one data set "main"
    return shared_tiny_config(datasets={name: heads}, input_size=(size, size), **{"dropout": 0.0, **overrides})


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
