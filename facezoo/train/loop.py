"""The generic training loop: any ``Task``, any ``tf.distribute`` strategy, fault tolerance.

Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so facezoo trains
with its own loop — ``strategy.run`` of the task's step inside a ``tf.function`` — the same loop on a
laptop, on several GPUs and on a cluster. What the model computes is the task's business
(``facezoo.tasks.base.Task``); the loop owns:

- the strategy and the distributed data set;
- checkpoints (``facezoo.train.checkpoint``) written at every epoch end (and every
  ``checkpoint_every_steps``), resumed mid-epoch after any stop, with every worker checked to hold
  the same step;
- averaging replica-local statistics (BatchNorm moving means) before every validation and checkpoint;
- the learning-rate schedule, plateau reduction and early stopping;
- ``best.keras`` / ``last.keras``, ``history.csv``, ``state.json`` and TensorBoard logs.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from facezoo.files import atomic_save_model, atomic_write
from facezoo.train import schedules
from facezoo.train.checkpoint import Checkpointer
from facezoo.train.config import TrainConfig
from facezoo.train.strategy import is_chief, worker_dir


class Trainer:
    """Trains ``task``'s model on ``train_data`` under ``strategy``.

    Args:
        task: a ``facezoo.tasks.base.Task``.
        train_data: repeating ``tf.data.Dataset`` of batches of the *global* batch size, in the form the
            task's ``train_step`` expects.
        config: a ``TrainConfig``.
        out_dir: where checkpoints, logs and models go.
        global_batch: the global batch size of ``train_data``.
        strategy: a ``tf.distribute`` strategy (default: the current one).
        val_data: optional ``{name: tf.data.Dataset}`` handed to ``task.validate``.
        on_epoch_begin: optional ``f(epoch, step)`` called on every worker before each epoch (epoch
            counted from 0, ``step`` the global step), e.g. ``Augmenter.set_step``.
    """

    def __init__(self, task, train_data, config: TrainConfig, out_dir, *, global_batch, strategy=None,
                 val_data=None, on_epoch_begin=None):
        self.task = task
        self.config = config
        self.out_dir = os.fspath(out_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.global_batch = int(global_batch)
        self.val_data = val_data or {}
        self.on_epoch_begin = on_epoch_begin
        self.chief = is_chief()
        self.write_dir = worker_dir(self.out_dir)
        os.makedirs(self.write_dir, exist_ok=True)
        keras.utils.set_random_seed(config.seed)

        with self.strategy.scope():
            self.model = task.build_model()
            lr = config.learning_rate * self.global_batch / config.reference_batch
            self.optimizers = task.build_optimizers(self.model, lr, config.weight_decay)
            self.base_lrs = {k: float(keras.ops.convert_to_numpy(o.learning_rate)) for k, o in self.optimizers.items()}
            self.base_lr = lr
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoints = Checkpointer(self.model, self.optimizers, self.step, self.epoch, self.strategy,
                                        out_dir=self.out_dir, write_dir=self.write_dir)
        self.train_data = self.strategy.experimental_distribute_dataset(train_data)
        self.schedule = schedules.make_schedule(config.schedule, config.epochs, **config.schedule_kwargs)
        self.plateau = schedules.ReduceOnPlateau(patience=config.plateau_patience or 10**9,
                                                 mode=config.monitor_mode)
        self.stopper = schedules.EarlyStopping(patience=config.early_stopping_patience or 10**9,
                                               mode=config.monitor_mode)
        self.history: list[dict] = []
        self.best = None
        self._epoch_start_step = None  # global step at which the current epoch began (None: epoch * steps)
        self._train_step = self._make_train_step()

    # ----------------------------------------------------------------- the step
    def _make_train_step(self):
        task, model, optimizers, strategy = self.task, self.model, self.optimizers, self.strategy
        global_batch = self.global_batch

        def step_fn(*batch):
            return task.train_step(batch if len(batch) > 1 else batch[0], model, optimizers, global_batch)

        @tf.function
        def train_step(iterator):
            batch = next(iterator)
            per_replica = strategy.run(step_fn, args=tuple(batch) if isinstance(batch, tuple) else (batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

        return train_step

    def validate(self) -> dict:
        """The task's validation metrics plus ``score`` (when the task gives one)."""
        flat = dict(self.task.validate(self.model, self.val_data)) if self.val_data else {}
        score = self.task.score(flat)
        if score is not None:
            flat["score"] = float(score)
        return flat

    # ----------------------------------------------------------------- state
    def restore(self) -> bool:
        """Restores the latest checkpoint and the loop state saved with it; True if one was found.

        Raises:
            RuntimeError: workers restored different steps (give them one shared ``out_dir``).
        """
        state = self.checkpoints.restore()
        if state is not None:
            self.history = state["history"]
            self._epoch_start_step = state.get("epoch_start_step")
            self.best = state["best"]
            self.plateau.load(state["plateau"])
            self.stopper.load(state["stopper"])
        return state is not None

    def _loop_state(self) -> dict:
        return {"epoch": int(self.epoch.numpy()), "step": int(self.step.numpy()),
                "epoch_start_step": self._epoch_start_step, "history": self.history,
                "best": self.best, "plateau": self.plateau.state(), "stopper": self.stopper.state(),
                "config": self.config.to_dict()}

    def save_checkpoint(self):
        """Averages replica-local statistics, then checkpoints with the loop state (collective: all workers)."""
        self.checkpoints.save(self._loop_state())

    def _set_learning_rate(self, epoch_float: float) -> float:
        factor = self.schedule(epoch_float) * self.plateau.current
        for name, opt in self.optimizers.items():
            opt.learning_rate = self.base_lrs[name] * factor
        return self.base_lr * factor

    # ----------------------------------------------------------------- the loop
    def fit(self, *, verbose=True) -> list[dict]:
        """Trains until ``config.epochs`` (resuming where a previous run stopped); returns the history.

        A run that stopped early stays stopped when run again.
        """
        cfg = self.config
        resumed = self.restore()
        if resumed and verbose and self.chief:
            print(f"resumed at epoch {int(self.epoch.numpy())}, step {int(self.step.numpy())}", flush=True)
        iterator = iter(self.train_data)
        writer = (tf.summary.create_file_writer(os.path.join(self.write_dir, "tensorboard"))
                  if importlib.util.find_spec("tensorboard") else None)
        for epoch in range(int(self.epoch.numpy()), cfg.epochs):
            if self.stopper.stopped:
                break
            t0 = time.time()
            if self.on_epoch_begin is not None:
                self.on_epoch_begin(epoch, int(self.step.numpy()))
            # Steps already done in this epoch, counted from where the epoch began (saved in the loop
            # state), so a resumed run whose steps_per_epoch changed still finishes the epoch correctly.
            start = self._epoch_start_step if self._epoch_start_step is not None else epoch * cfg.steps_per_epoch
            step_in_epoch = min(max(int(self.step.numpy()) - start, 0), cfg.steps_per_epoch)
            self._epoch_start_step = int(self.step.numpy()) - step_in_epoch
            bar = tqdm(total=cfg.steps_per_epoch, initial=step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not (verbose and self.chief), mininterval=5, dynamic_ncols=True)
            lr = self._set_learning_rate(epoch + step_in_epoch / cfg.steps_per_epoch)
            sums: dict[str, list] = {}
            for s in range(step_in_epoch, cfg.steps_per_epoch):
                lr = self._set_learning_rate(epoch + s / cfg.steps_per_epoch)
                try:
                    values = {k: float(v) for k, v in self._train_step(iterator).items()}
                except tf.errors.OutOfRangeError:
                    raise ValueError(f"train_data ran out at epoch {epoch + 1}, step {s}: it must repeat "
                                     f"(.repeat()) and give at least one full global batch of "
                                     f"{self.global_batch}") from None
                loss = values["loss"]
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, step {s}; "
                                             f"lower the learning rate (now {lr:.2e})")
                for k, v in values.items():
                    sums.setdefault(k, []).append(v)
                self.step.assign_add(1)
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(sums['loss'][-50:]):.4f}", lr=f"{lr:.1e}", refresh=False)
                # The last step of an epoch is checkpointed below, with the epoch's results.
                if (cfg.checkpoint_every_steps and s + 1 < cfg.steps_per_epoch
                        and int(self.step.numpy()) % cfg.checkpoint_every_steps == 0):
                    self.save_checkpoint()
            bar.close()
            self.checkpoints.sync_replicas()
            self.epoch.assign(epoch + 1)
            self._epoch_start_step = int(self.step.numpy())
            row = {"epoch": epoch + 1, "step": int(self.step.numpy()), "lr": lr,
                   "loss": float(np.mean(sums["loss"])) if sums else float("nan"),
                   "seconds": round(time.time() - t0, 1)}
            row.update({k: float(np.mean(v)) for k, v in sums.items() if k != "loss"})
            row.update(self.validate())
            self._track_best(row)
            self.history.append(row)
            self.save_checkpoint()
            if self.chief:
                self._write_logs(writer, row)
                if verbose:
                    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                             if "/" not in k or "/mean_" in k or k.endswith("_mae")}
                    print(json.dumps(shown), flush=True)
        if self.chief:
            atomic_save_model(self.model, os.path.join(self.out_dir, "last.keras"))
        return self.history

    def _track_best(self, row):
        cfg = self.config
        monitored = row.get(cfg.monitor)
        if monitored is None:
            return
        improved = self.best is None or (monitored > self.best if cfg.monitor_mode == "max" else monitored < self.best)
        if improved:
            self.best = monitored
            if self.chief:
                atomic_save_model(self.model, os.path.join(self.out_dir, "best.keras"))
        self.plateau.update(monitored)
        self.stopper.update(monitored)

    def restore_best(self) -> bool:
        """Loads the weights of ``best.keras`` (the best validated epoch) into the model; False if none exists."""
        from facezoo.models.weights import load_keras
        path = os.path.join(self.out_dir, "best.keras")
        if not os.path.exists(path):
            return False
        self.model.set_weights(load_keras(path).get_weights())
        return True

    def _write_logs(self, writer, row):
        atomic_write(os.path.join(self.out_dir, "state.json"), json.dumps(self._loop_state(), indent=1))
        keys = sorted({k for r in self.history for k in r})
        tmp = os.path.join(self.out_dir, "history.csv.tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.history)
        os.replace(tmp, os.path.join(self.out_dir, "history.csv"))
        if writer is not None:
            with writer.as_default(step=row["epoch"]):
                for k, v in row.items():
                    if isinstance(v, (int, float)) and k != "epoch":
                        tf.summary.scalar(k, v)
            writer.flush()


__all__ = ["Trainer", "TrainConfig"]
