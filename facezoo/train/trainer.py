"""The training loop: any ``tf.distribute`` strategy, masked multi-head losses, fault tolerance.

Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585), so facezoo
trains with its own loop — ``strategy.run`` inside a ``tf.function``, ``GradientTape``,
``optimizer.apply_gradients`` — the same loop on a laptop, on several GPUs and on a cluster.
Fault tolerance is the loop's job too (``BackupAndRestore`` is a ``fit`` callback): a
``tf.train.CheckpointManager`` over model, optimizer, step and epoch is written at the end of
every epoch (and every ``checkpoint_every_steps``), and a restarted process — or a whole restarted
cluster — resumes from it, so no epoch is lost or repeated. Every worker writes its own checkpoint
(saving is collective under ``MultiWorkerMirroredStrategy``; non-chief copies go to
``strategy.worker_dir``) and restores the chief's when it can see it (shared storage), its own
otherwise; the loop state (history, best value, plateau and early-stopping counters) is written
beside each checkpoint, so every worker resumes with the same learning rate and the same history.

Keras creates BatchNorm moving statistics with aggregation ``NONE``: under a multi-replica strategy
each replica updates its own copy from its own sub-batch and the copies drift apart. The trainer
averages them over replicas before every validation and checkpoint, so all workers validate,
checkpoint and export the same model.

Per epoch the chief also validates, keeps the best model (``best.keras``), reduces the learning rate
on plateaus, stops early, and appends to ``history.csv``/``history.json`` and TensorBoard.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
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
        on_epoch_begin: optional ``f(epoch, step)`` called on every worker before each epoch (epoch
            counted from 0, ``step`` the global step), e.g. ``Augmenter.set_step`` to move an
            augmentation schedule.
    """

    def __init__(self, model_fn, train_data, config: TrainConfig, out_dir, *, global_batch,
                 strategy=None, val_data=None, score_fn=None, on_epoch_begin=None):
        self.config = config
        self.out_dir = os.fspath(out_dir)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.global_batch = int(global_batch)
        self.val_data = val_data or {}
        self.score_fn = score_fn
        self.on_epoch_begin = on_epoch_begin
        self._epoch_start_step = None  # global step at which the current epoch began (None: epoch * steps)
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
        self._sync_replicas = self._make_replica_sync()
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

    def _make_replica_sync(self):
        """A function averaging the model's float non-trainable variables over replicas (no-op on one)."""
        variables = [v for v in self.model.non_trainable_variables if "float" in str(v.dtype)]
        strategy = self.strategy
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

    # ----------------------------------------------------------------- evaluation
    def predict_dataset(self, dataset):
        """Runs the model over a finite dataset; returns ``(outputs, labels, masks)`` numpy dicts."""
        return collect_outputs(self._forward, dataset)

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
        """Restores the latest checkpoint and the loop state saved with it; True if one was found.

        Every worker restores the chief's latest checkpoint when it can see it (a shared ``out_dir``),
        else its own copy (hosts without shared storage). Under ``MultiWorkerMirroredStrategy`` the
        workers then check that they all restored the same step.

        Raises:
            RuntimeError: workers restored different steps (give them one shared ``out_dir``).
        """
        path = self._latest_checkpoint()
        if path is not None:
            self.checkpoint.restore(path)
            state = self._read_state(path)
            if state is not None:
                self.history = state["history"]
                self._epoch_start_step = state.get("epoch_start_step")
                self.best = state["best"]
                self.plateau.load(state["plateau"])
                self.stopper.load(state["stopper"])
            elif int(self.epoch.numpy()) > 0 and self.chief:
                print(f"warning: no loop state beside {path}; the history of epochs 1-{int(self.epoch.numpy())} "
                      f"is not restored", flush=True)
        self._check_workers_agree()
        return path is not None

    def _latest_checkpoint(self):
        """Path of the newest checkpoint: the chief's if visible, else this worker's own, else None."""
        for folder in (os.path.join(self.out_dir, "ckpt"), os.path.join(self.write_dir, "ckpt")):
            path = tf.train.latest_checkpoint(folder)
            if path is not None:
                return path
        return None

    def _read_state(self, checkpoint_path):
        """The loop state saved with a checkpoint (or, for runs of older versions, ``state.json``)."""
        number = checkpoint_path.rsplit("-", 1)[-1]
        candidates = [(os.path.join(os.path.dirname(checkpoint_path), f"state-{number}.json"), None),
                      (os.path.join(self.out_dir, "state.json"), int(self.epoch.numpy()))]
        for path, epoch in candidates:
            if os.path.exists(path):
                with open(path) as f:
                    state = json.load(f)
                if epoch is None or state.get("epoch") == epoch:
                    return state
        return None

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

    def _loop_state(self) -> dict:
        return {"epoch": int(self.epoch.numpy()), "step": int(self.step.numpy()),
                "epoch_start_step": self._epoch_start_step, "history": self.history,
                "best": self.best, "plateau": self.plateau.state(), "stopper": self.stopper.state(),
                "config": self.config.to_dict()}

    def save_checkpoint(self):
        """Averages replica-local statistics, then saves a checkpoint and the loop state beside it.

        Every worker must call this at the same step (saving is collective under
        ``MultiWorkerMirroredStrategy``).
        """
        self._sync_replicas()
        number = int(self.step.numpy())
        folder = os.path.join(self.write_dir, "ckpt")
        os.makedirs(folder, exist_ok=True)
        # The state goes first: a checkpoint never exists without its state.
        _atomic_write(os.path.join(folder, f"state-{number}.json"), json.dumps(self._loop_state(), indent=1))
        self.manager.save(checkpoint_number=number)
        kept = {f"state-{p.rsplit('-', 1)[-1]}.json" for p in self.manager.checkpoints}
        for name in os.listdir(folder):
            if name.startswith("state-") and name.endswith(".json") and name not in kept:
                os.remove(os.path.join(folder, name))

    def _set_learning_rate(self, epoch_float: float) -> float:
        lr = self.base_lr * self.schedule(epoch_float) * self.plateau.current
        for mult, opt in self.optimizers.items():
            opt.learning_rate = lr * mult
        return lr

    def fit(self, *, verbose=True) -> list[dict]:
        """Trains until ``config.epochs`` (resuming where a previous run stopped); returns the history.

        A run that stopped early stays stopped when run again.
        """
        cfg = self.config
        resumed = self.restore()
        if resumed and verbose and self.chief:
            print(f"resumed from {self._latest_checkpoint()} at epoch {int(self.epoch.numpy())}, "
                  f"step {int(self.step.numpy())}", flush=True)
        iterator = iter(self.train_data)
        # TensorBoard summaries when the tensorboard package is installed (extra "tensorboard").
        writer = (tf.summary.create_file_writer(os.path.join(self.write_dir, "tensorboard"))
                  if importlib.util.find_spec("tensorboard") else None)
        for epoch in range(int(self.epoch.numpy()), cfg.epochs):
            if self.stopper.stopped:
                break
            t0 = time.time()
            if self.on_epoch_begin is not None:
                self.on_epoch_begin(epoch, int(self.step.numpy()))
            # Steps already done in this epoch: counted from where the epoch began (saved in the loop
            # state), so a resumed run whose steps_per_epoch changed still finishes the epoch correctly.
            start = self._epoch_start_step if self._epoch_start_step is not None else epoch * cfg.steps_per_epoch
            step_in_epoch = min(max(int(self.step.numpy()) - start, 0), cfg.steps_per_epoch)
            self._epoch_start_step = int(self.step.numpy()) - step_in_epoch
            bar = tqdm(total=cfg.steps_per_epoch, initial=step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not (verbose and self.chief), mininterval=5, dynamic_ncols=True)
            lr = self._set_learning_rate(epoch + step_in_epoch / cfg.steps_per_epoch)
            losses = []
            for s in range(step_in_epoch, cfg.steps_per_epoch):
                lr = self._set_learning_rate(epoch + s / cfg.steps_per_epoch)
                try:
                    loss = float(self._train_step(iterator))
                except tf.errors.OutOfRangeError:
                    raise ValueError(f"train_data ran out at epoch {epoch + 1}, step {s}: it must repeat "
                                     f"(.repeat()) and give at least one full global batch of "
                                     f"{self.global_batch}") from None
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss} at epoch {epoch + 1}, step {s}; "
                                             f"lower the learning rate (now {lr:.2e})")
                losses.append(loss)
                self.step.assign_add(1)
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr:.1e}", refresh=False)
                # The last step of an epoch is checkpointed below, with the epoch's results.
                if (cfg.checkpoint_every_steps and s + 1 < cfg.steps_per_epoch
                        and int(self.step.numpy()) % cfg.checkpoint_every_steps == 0):
                    self.save_checkpoint()
            bar.close()
            self._sync_replicas()
            self.epoch.assign(epoch + 1)
            self._epoch_start_step = int(self.step.numpy())
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
                self.stopper.update(monitored)
            self.history.append(row)
            self.save_checkpoint()
            if self.chief:
                self._write_logs(writer, row)
                if verbose:
                    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                             if "/" not in k or "/mean_" in k or k.endswith("_mae") or k == "score"}
                    print(json.dumps(shown), flush=True)
        if self.chief:
            _atomic_save_model(self.model, os.path.join(self.out_dir, "last.keras"))
        return self.history

    def restore_best(self) -> bool:
        """Loads the weights of ``best.keras`` (the best validated epoch) into the model; False if none exists."""
        path = os.path.join(self.out_dir, "best.keras")
        if not os.path.exists(path):
            return False
        from facezoo.zoo import load_keras
        self.model.set_weights(load_keras(path).get_weights())
        return True

    def _write_logs(self, writer, row):
        _atomic_write(os.path.join(self.out_dir, "state.json"), json.dumps(self._loop_state(), indent=1))
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
    cat = lambda d: {k: np.concatenate(v) for k, v in d.items()}  # noqa: E731
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
