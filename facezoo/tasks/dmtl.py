"""The DMTL task: per-head targets, the masked multi-head loss, per-data-set validation metrics.

Pipelines yield labels keyed by attribute name; a DMTL model's outputs are keyed
``<dataset>__<attribute>``. ``for_model`` renames the keys and adds the heads of the *other* data sets
with mask 0, so every batch has the same structure and trains only its own heads. ``DmtlTask`` is what
``facezoo.train.loop.Trainer`` runs; ``collect_outputs`` and ``evaluate_outputs`` serve its validation
and ``facezoo evaluate`` alike.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from facezoo.models.dmtl import confidence_name, heads_of
from facezoo.models.heads import decode_confidence
from facezoo.tasks import losses as losses_lib
from facezoo.tasks import metrics as metrics_lib
from facezoo.tasks.base import Task, freeze_until, variable_groups


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


def compute_loss(model_or_config, outputs, labels, masks, *, confidence_weight: float = 0.2):
    """Summed (not yet averaged) masked loss over every head, and each head's summed loss.

    Each head's loss is weighted by its ``HeadSpec.weight`` times its data set's weight; the
    self-evaluation heads add ``confidence_weight`` times their own loss.
    """
    config = getattr(model_or_config, "dmtl_config", model_or_config)
    ds_weights = {d.name: d.weight for d in config.datasets}
    total = 0.0
    per_head = {}
    for ds_name, spec, out in heads_of(config):
        attr = spec.attribute
        head_sum = losses_lib.masked_sum(losses_lib.head_loss(attr, labels[out], outputs[out]), masks[out])
        per_head[out] = head_sum
        total += spec.weight * ds_weights[ds_name] * head_sum
        conf = confidence_name(out)
        if conf in outputs:
            c = losses_lib.confidence_loss(attr, labels[out], outputs[out], outputs[conf], spec.tolerance)
            total += confidence_weight * losses_lib.masked_sum(c, masks[out])
    return total, per_head


def collect_outputs(forward, dataset):
    """Runs ``forward`` over a finite ``(images, labels, masks)`` dataset.

    Returns:
        ``(outputs, labels, masks)``, each a dict of numpy arrays concatenated over batches.
    """
    outs, labs, msks = {}, {}, {}
    for images, labels, masks in dataset:
        for k, v in forward(images).items():
            outs.setdefault(k, []).append(v.numpy())
        for k, v in labels.items():
            labs.setdefault(k, []).append(v.numpy())
        for k, v in masks.items():
            msks.setdefault(k, []).append(v.numpy())

    def cat(d):
        return {k: np.concatenate(v) for k, v in d.items()}

    return cat(outs), cat(labs), cat(msks)


def evaluate_outputs(model_or_config, outputs, labels, masks, datasets=None, abstain_below=0.5) -> dict:
    """Per-head metrics and per-data-set summaries from model outputs (numpy dicts by output name).

    Returns:
        ``{"heads": {output_name: metrics}, "summary": {dataset: {metric: value}}}``; a data set's
        summary holds the means over its heads (``mean_accuracy``, ...) and, for ordinal heads,
        ``<attribute>_mae``; nominal heads add ``<attribute>_accuracy``.
    """
    per_head = {}
    by_ds: dict[str, dict] = {}
    for ds_name, spec, out in heads_of(model_or_config):
        if datasets is not None and ds_name not in datasets:
            continue
        if out not in labels:
            continue
        conf = outputs.get(confidence_name(out))
        if conf is not None:
            conf = decode_confidence(conf)
        m = metrics_lib.head_metrics(spec.attribute, outputs[out], labels[out], masks.get(out),
                                     tolerance=spec.tolerance, confidence=conf, abstain_below=abstain_below)
        per_head[out] = m
        by_ds.setdefault(ds_name, {})[spec.attribute.name] = m
    summary = {}
    for ds_name, heads in by_ds.items():
        s = metrics_lib.summarize(heads)
        for name, m in heads.items():
            if m.get("n", 0) == 0:
                continue
            s[f"{name}_accuracy"] = m["accuracy"]
            if "mae" in m:
                s[f"{name}_mae"] = m["mae"]
        summary[ds_name] = s
    return {"heads": per_head, "summary": summary}


class DmtlTask(Task):
    """Trains a DMTL model (``facezoo.models.Dmtl``) on ``(images, labels, masks)`` batches.

    Args:
        model_fn: zero-argument callable returning the model (called inside the strategy scope).
        confidence_weight: loss weight of the self-evaluation heads.
        freeze_until: name of a trunk layer; it and every layer before it are frozen (transfer learning).
        lr_multipliers: variable-path prefix -> learning-rate multiplier (per-layer learning rates): one
            AdamW per multiplier, since Adam normalises gradients and a per-layer rate must scale the update.
        score_fn: optional ``flat metrics -> float``, the validation ``score`` (higher is better).
    """

    def __init__(self, model_fn, *, confidence_weight: float = 0.2, freeze_until: str | None = None,
                 lr_multipliers: dict | None = None, score_fn=None):
        self.model_fn = model_fn
        self.confidence_weight = confidence_weight
        self.freeze_until = freeze_until
        self.lr_multipliers = dict(lr_multipliers or {})
        self.score_fn = score_fn
        self.groups: dict[float, list] = {}
        self._forward = None

    def build_model(self):
        model = self.model_fn()
        freeze_until(model, self.freeze_until)
        return model

    def build_optimizers(self, model, learning_rate, weight_decay):
        self.groups = variable_groups(model, self.lr_multipliers)
        optimizers = {}
        for i, mult in enumerate(sorted(self.groups)):
            opt = keras.optimizers.AdamW(learning_rate=learning_rate * mult, weight_decay=weight_decay)
            opt.build(self.groups[mult])
            optimizers[str(i)] = opt
        return optimizers

    def compute_loss(self, model, outputs, labels, masks, global_batch):
        """Total loss divided by the global batch, and per-head summed losses."""
        total, per_head = compute_loss(model, outputs, labels, masks, confidence_weight=self.confidence_weight)
        return total / global_batch, per_head

    def train_step(self, batch, model, optimizers, global_batch):
        images, labels, masks = batch
        groups = [(optimizers[str(i)], self.groups[m]) for i, m in enumerate(sorted(self.groups))]
        variables = [v for _, vs in groups for v in vs]
        with tf.GradientTape() as tape:
            outputs = model(images, training=True)
            loss, _ = self.compute_loss(model, outputs, labels, masks, global_batch)
            if model.losses:
                loss += tf.add_n(model.losses) / tf.distribute.get_strategy().num_replicas_in_sync
        grads = tape.gradient(loss, variables)
        i = 0
        for optimizer, vs in groups:
            optimizer.apply_gradients(zip(grads[i:i + len(vs)], vs))
            i += len(vs)
        return {"loss": loss}

    def forward(self, model):
        """A cached inference ``tf.function`` of ``model``."""
        if self._forward is None or self._forward[0] is not model:
            self._forward = (model, tf.function(lambda x: model(x, training=False)))
        return self._forward[1]

    def validate(self, model, val_data):
        """Metrics on every validation set, flattened as ``dataset/metric``."""
        flat = {}
        for ds_name, dataset in val_data.items():
            outputs, labels, masks = collect_outputs(self.forward(model), dataset)
            result = evaluate_outputs(model, outputs, labels, masks, datasets=[ds_name])
            for k, v in result["summary"][ds_name].items():
                flat[f"{ds_name}/{k}"] = v
        return flat

    def score(self, metrics):
        if self.score_fn is None or not metrics:
            return None
        return float(self.score_fn(metrics))
