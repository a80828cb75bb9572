"""Adapts data pipelines to a DMTL model's outputs, and mixes several data sets into one stream.

Pipelines yield labels keyed by attribute name; a DMTL model's outputs are keyed
``<dataset>__<attribute>``. ``for_model`` renames the keys and adds the heads of the *other* data
sets with mask 0, so every batch has the same structure and trains only its own heads.
"""
from __future__ import annotations

import tensorflow as tf

from facezoo.models.dmtl import heads_of


def for_model(dataset: tf.data.Dataset, dataset_name: str, model_or_config) -> tf.data.Dataset:
    """Maps ``(images, labels, masks)`` keyed by attribute to the model's output keys."""
    heads = heads_of(model_or_config)
    names = {d for d, _, _ in heads}
    if dataset_name not in names:
        raise ValueError(f"for_model: the model has no branch {dataset_name!r}; it has {sorted(names)}")

    def remap(images, labels, masks):
        batch = tf.shape(images)[0]
        new_labels, new_masks = {}, {}
        for ds, spec, out in heads:
            attr = spec.attribute
            dtype = tf.float32 if attr.kind == "binary" else tf.int32
            if ds == dataset_name and attr.name in labels:
                new_labels[out] = tf.cast(labels[attr.name], dtype)
                new_masks[out] = tf.cast(masks[attr.name], tf.float32)
            else:
                new_labels[out] = tf.zeros([batch], dtype)
                new_masks[out] = tf.zeros([batch], tf.float32)
        return images, new_labels, new_masks

    return dataset.map(remap, num_parallel_calls=tf.data.AUTOTUNE)


def mix(datasets: dict, weights: dict | None = None, seed: int = 0) -> tf.data.Dataset:
    """Samples whole batches from several repeating, already-adapted datasets.

    Args:
        datasets: name -> dataset of batches (same element structure, e.g. from ``for_model``).
        weights: name -> sampling weight (default: equal).
    """
    names = sorted(datasets)
    if len(names) == 1:
        return datasets[names[0]]
    w = [float((weights or {}).get(n, 1.0)) for n in names]
    total = sum(w)
    return tf.data.Dataset.sample_from_datasets([datasets[n] for n in names], weights=[x / total for x in w],
                                                seed=seed, stop_on_empty_dataset=False)
