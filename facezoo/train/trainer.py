"""The training loop: any ``tf.distribute`` strategy, masked multi-head losses, fault tolerance.

Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so facezoo
trains with its own loop — ``strategy.run`` inside a ``tf.function``, ``GradientTape``,
``optimizer.apply_gradients`` — the same loop on a laptop, on several GPUs and on a cluster.
Fault tolerance is the loop's job too (``BackupAndRestore`` is a ``fit`` callback): a
``tf.train.CheckpointManager`` over model, optimizer, step and epoch is written at the end of
every epoch (and every ``checkpoint_every_steps``), and a restarted process — or a whole restarted
cluster — resumes from it, so no epoch is lost or repeated.

Per epoch the chief also validates, keeps the best model (``best.keras``), reduces the learning rate
on plateaus, stops early, and appends to ``history.csv``/``history.json`` and TensorBoard.
"""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from facezoo.models.dmtl import confidence_name, heads_of
from facezoo.train import losses as losses_lib
from facezoo.train import metrics as metrics_lib
from facezoo.train import schedules
from facezoo.train.strategy import is_chief, worker_dir


@dataclasses.dataclass
class TrainConfig:
    """The schedule and bookkeeping of one training run.

    Args:
        epochs: number of epochs.
        steps_per_epoch: optimizer steps per epoch (the data sets repeat).
        learning_rate: peak learning rate for a global batch of ``reference_batch``; scaled linearly
            with the actual global batch.
        reference_batch: batch size ``learning_rate`` was chosen for.
        weight_decay: AdamW decoupled weight decay.
        schedule: ``cosine``, ``step`` or ``constant`` (see ``facezoo.train.schedules``).
        schedule_kwargs: extra arguments of the schedule (``boundaries`` for ``step``, ...).
        monitor: validation metric key to choose the best epoch (``dataset/metric``, or ``score``).
        monitor_mode: ``max`` or ``min``.
        plateau_patience: epochs without improvement before halving the learning rate (0: off).
        early_stopping_patience: epochs without improvement before stopping (0: off).
        confidence_weight: loss weight of the self-evaluation heads.
        checkpoint_every_steps: extra mid-epoch checkpoints (0: only at epoch ends).
        freeze_until: name of a trunk layer; it and every layer before it are frozen (transfer learning).
        lr_multipliers: layer-name prefix → learning-rate multiplier (per-layer learning rates).
        seed: seed for initialisation and data order.
    """

    epochs: int = 10
    steps_per_epoch: int = 100
    learning_rate: float = 2e-3
    reference_batch: int = 64
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    schedule_kwargs: dict = dataclasses.field(default_factory=dict)
    monitor: str = "score"
    monitor_mode: str = "max"
    plateau_patience: int = 0
    early_stopping_patience: int = 0
    confidence_weight: float = 0.2
    checkpoint_every_steps: int = 0
    freeze_until: str | None = None
    lr_multipliers: dict = dataclasses.field(default_factory=dict)
    seed: int = 0

    def to_dict(self):
        return dataclasses.asdict(self)


class Trainer:
    """Trains a DMTL model built by ``model_fn`` on ``train_data`` under ``strategy``.

    Args:
        model_fn: zero-argument callable returning a ``facezoo.models.Dmtl`` (called inside the
            strategy scope).
        train_data: ``tf.data.Dataset`` of ``(images, labels, masks)`` batches of the *global*
            batch size, labels/masks keyed by model output names (``for_model`` builds them), repeating.
        config: a ``TrainConfig``.
        out_dir: where checkpoints, logs and models go.
        strategy: a ``tf.distribute`` strategy (default: the current one).
        val_data: optional ``{dataset_name: tf.data.Dataset}`` of validation batches (finite).
        score_fn: optional ``metrics dict -> float`` giving the ``score`` monitored by default.
        global_batch: the global batch size of ``train_data``.
    """

    def __init__(self, model_fn, train_data, config: TrainConfig, out_dir, *, global_batch,
                 strategy=None, val_data=None, score_fn=None):
        self.config = config
        self.out_dir = os.fspath(out_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.global_batch = int(global_batch)
        self.val_data = val_data or {}
        self.score_fn = score_fn
        self.chief = is_chief()
        self.write_dir = worker_dir(self.out_dir)
        os.makedirs(self.write_dir, exist_ok=True)
        keras.utils.set_random_seed(config.seed)

        with self.strategy.scope():
            self.model = model_fn()
            self._freeze(config.freeze_until)
            lr = config.learning_rate * self.global_batch / config.reference_batch
            self.base_lr = lr
            # One AdamW per learning-rate multiplier: Adam normalises gradients, so a per-layer
            # learning rate must scale the update, i.e. be that optimizer's own learning rate.
            self.groups = self._variable_groups(config.lr_multipliers)
            self.optimizers = {}
            for mult, variables in self.groups.items():
                opt = keras.optimizers.AdamW(learning_rate=lr * mult, weight_decay=config.weight_decay)
                opt.build(variables)
                self.optimizers[mult] = opt
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.heads = heads_of(self.model)
        optimizers = {f"optimizer_{i}": self.optimizers[m] for i, m in enumerate(sorted(self.optimizers))}
        self.checkpoint = tf.train.Checkpoint(model=self.model, step=self.step, epoch=self.epoch, **optimizers)
        self.manager = tf.train.CheckpointManager(self.checkpoint, os.path.join(self.write_dir, "ckpt"),
                                                  max_to_keep=2)
        self.train_data = self.strategy.experimental_distribute_dataset(train_data)
        self.schedule = schedules.make_schedule(config.schedule, config.epochs, **config.schedule_kwargs)
        self.plateau = schedules.ReduceOnPlateau(patience=config.plateau_patience or 10**9,
                                                 mode=config.monitor_mode)
        self.stopper = schedules.EarlyStopping(patience=config.early_stopping_patience or 10**9,
                                               mode=config.monitor_mode)
        self.history: list[dict] = []
        self.best = None
        self._train_step = self._make_train_step()
        self._forward = tf.function(lambda x: self.model(x, training=False))

    # ----------------------------------------------------------------- set-up helpers
    def _freeze(self, until):
        if not until:
            return
        names = [layer.name for layer in self.model.layers]
        if until not in names:
            raise ValueError(f"freeze_until={until!r} is not a layer of {self.model.name}; "
                             f"some layer names: {names[:5]} ... {names[-5:]}")
        for layer in self.model.layers[: names.index(until) + 1]:
            layer.trainable = False

    def _variable_groups(self, prefixes):
        """Groups trainable variables by learning-rate multiplier (the last matching prefix wins)."""
        groups: dict[float, list] = {}
        for v in self.model.trainable_variables:
            m = 1.0
            for prefix, mult in (prefixes or {}).items():
                if v.path.startswith(prefix):
                    m = float(mult)
            groups.setdefault(m, []).append(v)
        return groups

    # ----------------------------------------------------------------- the step
    def compute_loss(self, outputs, labels, masks):
        """Total loss (divided by the global batch) and per-head summed losses."""
        total = 0.0
        per_head = {}
        for ds_name, spec, out in self.heads:
            attr = spec.attribute
            ds_weight = next(d.weight for d in self.model.dmtl_config.datasets if d.name == ds_name)
            per_ex = losses_lib.head_loss(attr, labels[out], outputs[out])
            head_sum = losses_lib.masked_sum(per_ex, masks[out])
            per_head[out] = head_sum
            total += spec.weight * ds_weight * head_sum
            conf = confidence_name(out)
            if conf in outputs:
                c = losses_lib.confidence_loss(attr, labels[out], outputs[out], outputs[conf], spec.tolerance)
                total += self.config.confidence_weight * losses_lib.masked_sum(c, masks[out])
        return total / self.global_batch, per_head

    def _make_train_step(self):
        model, strategy = self.model, self.strategy
        groups = [(self.optimizers[m], vs) for m, vs in self.groups.items()]
        variables = [v for _, vs in groups for v in vs]

        def step_fn(images, labels, masks):
            with tf.GradientTape() as tape:
                outputs = model(images, training=True)
                loss, _ = self.compute_loss(outputs, labels, masks)
                if model.losses:
                    loss += tf.add_n(model.losses) / strategy.num_replicas_in_sync
            grads = tape.gradient(loss, variables)
            i = 0
            for optimizer, vs in groups:
                optimizer.apply_gradients(zip(grads[i:i + len(vs)], vs))
                i += len(vs)
            return loss

        @tf.function
        def train_step(iterator):
            per_replica = strategy.run(step_fn, args=next(iterator))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        return train_step

    # ----------------------------------------------------------------- evaluation
    def predict_dataset(self, dataset):
        """Runs the model over a finite dataset; returns ``(outputs, labels, masks)`` numpy dicts."""
        outs, labs, msks = {}, {}, {}
        for images, labels, masks in dataset:
            o = self._forward(images)
            for k, v in o.items():
                outs.setdefault(k, []).append(v.numpy())
            for k, v in labels.items():
                labs.setdefault(k, []).append(v.numpy())
            for k, v in masks.items():
                msks.setdefault(k, []).append(v.numpy())
        cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}  # noqa: E731
        return cat(outs), cat(labs), cat(msks)

    def validate(self) -> dict:
        """Metrics on every validation set, flattened as ``dataset/metric``, plus ``score``."""
        flat = {}
        for ds_name, dataset in self.val_data.items():
            outputs, labels, masks = self.predict_dataset(dataset)
            result = evaluate_outputs(self.model, outputs, labels, masks, datasets=[ds_name])
            for k, v in result["summary"][ds_name].items():
                flat[f"{ds_name}/{k}"] = v
        if self.score_fn is not None and flat:
            flat["score"] = float(self.score_fn(flat))
        return flat

    # ----------------------------------------------------------------- the loop
    def restore(self) -> bool:
        """Restores the latest checkpoint (and the loop state beside it); True if one was found."""
        path = self.manager.restore_or_initialize()
        state_path = os.path.join(self.out_dir, "state.json")
        if path is None:
            return False
        if os.path.exists(state_path):
            with open(state_path) as f:
                state = json.load(f)
            if state.get("epoch") == int(self.epoch.numpy()):
                self.history = state["history"]
                self.best = state["best"]
                self.plateau.load(state["plateau"])
                self.stopper.load(state["stopper"])
        return True

    def fit(self, *, verbose=True) -> list[dict]:
        """Trains until ``config.epochs`` (resuming where a previous run stopped); returns the history."""
        cfg = self.config
        resumed = self.restore()
        if resumed and verbose and self.chief:
            print(f"resumed from {self.manager.latest_checkpoint} at epoch {int(self.epoch.numpy())}, "
                  f"step {int(self.step.numpy())}", flush=True)
        iterator = iter(self.train_data)
        # TensorBoard summaries when the tensorboard package is installed (extra "tensorboard").
        writer = (tf.summary.create_file_writer(os.path.join(self.write_dir, "tensorboard"))
                  if importlib.util.find_spec("tensorboard") else None)
        start_epoch = int(self.epoch.numpy())
        stopped = False
        for epoch in range(start_epoch, cfg.epochs):
            if stopped:
                break
            t0 = time.time()
            step_in_epoch = int(self.step.numpy()) - epoch * cfg.steps_per_epoch
            bar = tqdm(total=cfg.steps_per_epoch, initial=step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not (verbose and self.chief), mininterval=5, dynamic_ncols=True)
            losses = []
            for s in range(step_in_epoch, cfg.steps_per_epoch):
                lr = self.base_lr * self.schedule(epoch + s / cfg.steps_per_epoch) * self.plateau.current
                for mult, opt in self.optimizers.items():
                    opt.learning_rate = lr * mult
                loss = float(self._train_step(iterator))
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, step {s}; "
                                             f"lower the learning rate (now {lr:.2e})")
                losses.append(loss)
                self.step.assign_add(1)
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr:.1e}", refresh=False)
                if cfg.checkpoint_every_steps and int(self.step.numpy()) % cfg.checkpoint_every_steps == 0:
                    self.manager.save(checkpoint_number=int(self.step.numpy()))
            bar.close()
            self.epoch.assign(epoch + 1)
            row = {"epoch": epoch + 1, "step": int(self.step.numpy()), "lr": lr,
                   "loss": float(np.mean(losses)) if losses else float("nan"),
                   "seconds": round(time.time() - t0, 1)}
            row.update(self.validate())
            monitored = row.get(cfg.monitor)
            if monitored is not None:
                improved = self.best is None or (monitored > self.best if cfg.monitor_mode == "max"
                                                 else monitored < self.best)
                if improved:
                    self.best = monitored
                    if self.chief:
                        _atomic_save_model(self.model, os.path.join(self.out_dir, "best.keras"))
                self.plateau.update(monitored)
                stopped = self.stopper.update(monitored)
            self.history.append(row)
            self.manager.save(checkpoint_number=int(self.step.numpy()))
            if self.chief:
                self._write_logs(writer, row)
                if verbose:
                    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                             if "/" not in k or "/mean_" in k or k.endswith("_mae") or k == "score"}
                    print(json.dumps(shown), flush=True)
        if self.chief:
            _atomic_save_model(self.model, os.path.join(self.out_dir, "last.keras"))
        return self.history

    def _write_logs(self, writer, row):
        state = {"epoch": row["epoch"], "history": self.history, "best": self.best,
                 "plateau": self.plateau.state(), "stopper": self.stopper.state(),
                 "config": self.config.to_dict()}
        _atomic_write(os.path.join(self.out_dir, "state.json"), json.dumps(state, indent=1))
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
            conf = 1.0 / (1.0 + np.exp(-conf.reshape(-1)))
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


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _atomic_save_model(model, path):
    tmp = path[: -len(".keras")] + ".tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
