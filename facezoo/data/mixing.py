"""Mixing several data sets' batch streams into one (a branch per data set trains through one trunk)."""
from __future__ import annotations

import tensorflow as tf


def mix(datasets: dict, weights: dict | None = None, seed: int = 0) -> tf.data.Dataset:
    """Samples whole batches from several repeating datasets of the same element structure.

    Args:
        datasets: name -> dataset of batches (e.g. each adapted by ``facezoo.tasks.dmtl.for_model``).
        weights: name -> sampling weight (default: equal).
        seed: seed of the sampling order.
    """
    names = sorted(datasets)
    if len(names) == 1:
        return datasets[names[0]]
    w = [float((weights or {}).get(n, 1.0)) for n in names]
    total = sum(w)
    return tf.data.Dataset.sample_from_datasets([datasets[n] for n in names], weights=[x / total for x in w],
                                                seed=seed, stop_on_empty_dataset=False)
