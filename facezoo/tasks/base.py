"""The contract between the generic training loop and a model family.

The loop (``facezoo.train.loop.Trainer``) owns the strategy, checkpoints, resuming mid-epoch, worker
agreement, the learning-rate schedule, early stopping and logs. A ``Task`` owns everything that knows
what the model computes: building it, its optimizers, its loss and gradient step, and its validation
metrics. The loop calls, in this order:

1. ``build_model()`` and ``build_optimizers(model, learning_rate, weight_decay)`` inside
   ``strategy.scope()``;
2. ``train_step(batch, model, optimizers, global_batch)`` per replica, inside ``strategy.run`` in a
   ``tf.function``: it computes and applies the gradients and returns scalar tensors that the loop
   SUM-reduces over replicas — so each is a per-replica sum divided by ``global_batch``; ``"loss"`` is
   required (shown on the progress bar and logged);
3. ``validate(model, val_data)`` eagerly at the end of each epoch, after replica-local statistics were
   averaged: ``{metric: float}``; and ``score(metrics)``, the value the loop monitors by default.

The loop scales every optimizer's learning rate by the schedule: ``lr = base * schedule(epoch) *
plateau``, where ``base`` is the learning rate the optimizer was built with.
"""
from __future__ import annotations

import keras


class Task:
    """Base class of training tasks (see the module docstring)."""

    def build_model(self) -> keras.Model:
        raise NotImplementedError

    def build_optimizers(self, model, learning_rate: float, weight_decay: float) -> dict:
        """One AdamW over every trainable variable, named ``"0"``."""
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
        optimizer.build(model.trainable_variables)
        return {"0": optimizer}

    def train_step(self, batch, model, optimizers: dict, global_batch: int) -> dict:
        raise NotImplementedError

    def validate(self, model, val_data: dict) -> dict:
        """Validation metrics (default: none)."""
        return {}

    def score(self, metrics: dict):
        """The scalar the loop monitors as ``score`` (higher is better), or None for no score."""
        return None


def freeze_until(model, layer_name: str | None):
    """Freezes ``layer_name`` and every layer before it (transfer learning); None freezes nothing."""
    if not layer_name:
        return
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f"freeze_until={layer_name!r} is not a layer of {model.name}; "
                         f"some layer names: {names[:5]} ... {names[-5:]}")
    for layer in model.layers[: names.index(layer_name) + 1]:
        layer.trainable = False


def variable_groups(model, multipliers: dict | None) -> dict[float, list]:
    """Trainable variables grouped by learning-rate multiplier: the last matching path prefix wins."""
    groups: dict[float, list] = {}
    for v in model.trainable_variables:
        m = 1.0
        for prefix, mult in (multipliers or {}).items():
            if v.path.startswith(prefix):
                m = float(mult)
        groups.setdefault(m, []).append(v)
    return groups
