"""Checkpoints of the training loop: save/restore with the loop state, worker agreement, replica sync.

A ``tf.train.CheckpointManager`` over model, optimizers, step and epoch is written at the end of every
epoch (and every ``checkpoint_every_steps``), and a restarted process — or a whole restarted cluster —
resumes from it, so no epoch is lost or repeated. Every worker writes its own checkpoint (saving is
collective under ``MultiWorkerMirroredStrategy``; non-chief copies go to ``strategy.worker_dir``) and
restores the chief's when it can see it (shared storage), its own otherwise; the loop state (history,
best value, plateau and early-stopping counters) is written beside each checkpoint, so every worker
resumes with the same learning rate and the same history.

Keras creates BatchNorm moving statistics with aggregation ``NONE``: under a multi-replica strategy each
replica updates its own copy from its own sub-batch and the copies drift apart. ``sync_replicas``
averages them; the loop calls it before every validation and checkpoint, so all workers validate,
checkpoint and export the same model.
"""
from __future__ import annotations

import functools
import json
import os

import numpy as np
import tensorflow as tf

from facezoo.files import atomic_write


class Checkpointer:
    """Saves and restores ``model``, ``optimizers`` (name -> optimizer), ``step`` and ``epoch``."""

    def __init__(self, model, optimizers: dict, step, epoch, strategy, *, out_dir: str, write_dir: str):
        self.strategy = strategy
        self.out_dir = out_dir
        self.write_dir = write_dir
        self.step = step
        named = {f"optimizer_{name}": opt for name, opt in sorted(optimizers.items())}
        self.checkpoint = tf.train.Checkpoint(model=model, step=step, epoch=epoch, **named)
        self.folder = os.path.join(write_dir, "ckpt")
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.folder, max_to_keep=2)
        self.sync_replicas = _replica_sync(model, strategy)

    def latest(self):
        """Path of the newest checkpoint: the chief's if visible, else this worker's own, else None."""
        for folder in (os.path.join(self.out_dir, "ckpt"), self.folder):
            path = tf.train.latest_checkpoint(folder)
            if path is not None:
                return path
        return None

    def restore(self) -> dict | None:
        """Restores the latest checkpoint; returns the loop state saved with it (None: nothing to resume).

        Raises:
            RuntimeError: a checkpoint has no loop state beside it, or workers restored different steps.
        """
        path = self.latest()
        state = None
        if path is not None:
            self.checkpoint.restore(path)
            state_path = os.path.join(os.path.dirname(path), f"state-{path.rsplit('-', 1)[-1]}.json")
            if not os.path.exists(state_path):
                raise RuntimeError(f"checkpoint {path} has no loop state {state_path}: the run folder is "
                                   "damaged; remove its ckpt/ folder to start again")
            with open(state_path) as f:
                state = json.load(f)
        self._check_workers_agree()
        return state

    def save(self, state: dict):
        """Averages replica-local statistics, then saves a checkpoint with ``state`` beside it.

        Every worker must call this at the same step (saving is collective under MWMS).
        """
        self.sync_replicas()
        number = int(self.step.numpy())
        os.makedirs(self.folder, exist_ok=True)
        # The state goes first: a checkpoint never exists without its state.
        atomic_write(os.path.join(self.folder, f"state-{number}.json"), json.dumps(state, indent=1))
        self.manager.save(checkpoint_number=number)
        kept = {f"state-{p.rsplit('-', 1)[-1]}.json" for p in self.manager.checkpoints}
        for name in os.listdir(self.folder):
            if name.startswith("state-") and name.endswith(".json") and name not in kept:
                os.remove(os.path.join(self.folder, name))

    def _check_workers_agree(self):
        """Raises unless every worker of a multi-worker cluster holds the same step."""
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return
        local = int(self.step.numpy())
        steps = self.strategy.gather(self.strategy.run(lambda: tf.constant([local], tf.int64)), axis=0)
        steps = sorted(set(int(s) for s in steps.numpy()))
        if len(steps) > 1:
            raise RuntimeError(f"workers restored different checkpoints (steps {steps}); every worker must see "
                               f"the chief's checkpoints: give all workers the same --out on shared storage")


def _replica_sync(model, strategy):
    """A function averaging the model's float non-trainable variables over replicas (no-op on one)."""
    variables = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]
    if strategy.num_replicas_in_sync == 1 or not variables:
        return lambda: None
    sizes = [int(np.prod(v.shape)) for v in variables]

    @functools.partial(tf.function, autograph=False)
    def sync():
        # One all-reduce of all variables, flattened and concatenated.
        local = strategy.run(lambda: tf.concat([tf.reshape(tf.cast(v.value, tf.float32), [-1])
                                                for v in variables], 0))
        mean = strategy.reduce(tf.distribute.ReduceOp.MEAN, local, axis=None)
        for v, part in zip(variables, tf.split(mean, sizes)):
            v.assign(tf.cast(tf.reshape(part, v.shape), v.dtype))

    return sync
