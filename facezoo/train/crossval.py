"""k-fold cross-validation over a split field, e.g. Adience's official subject-disjoint ``fold_0`` .. ``fold_4``.

Fold ``k`` is held out while a model trains on the other folds; every metric is then reported as
mean ± standard deviation over the folds (``crossval.json`` and a Markdown table, ``crossval.md``).

The held-out fold never chooses anything: fold metrics are those of the *final* weights, and
plateau reduction and early stopping should stay off (``TrainConfig`` defaults), because choosing
an epoch on the fold that is then reported would overstate the result. The fold is still
validated every epoch, for the curves in each fold's ``history.csv``.

``cross_validate`` is the loop (any training function); ``run_dmtl_crossval`` trains a DMTL model
per fold with ``facezoo.train.loop.Trainer``. Both resume: a fold whose training finished is
only re-evaluated.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Callable, Mapping, Sequence

import numpy as np

from facezoo.files import atomic_write

METRICS_FILE = "metrics.json"


def fold_names(records, field: str = "split") -> list[str]:
    """The distinct values of ``field`` over ``records`` (FaceRecords), sorted: the folds."""
    return sorted({getattr(r, field) for r in records})


def summarize_folds(per_fold: Mapping[str, Mapping[str, float]]) -> dict:
    """Mean and sample standard deviation (ddof 1; 0 for one fold) of every metric over the folds.

    Args:
        per_fold: fold name -> ``{metric: value}``. A metric missing from some folds is summarised
            over the folds that have it (``n`` says how many).

    Returns:
        ``{"folds": per_fold, "metrics": {metric: {"mean", "std", "n"}}}``.
    """
    names = sorted({k for m in per_fold.values() for k in m})
    summary = {}
    for name in names:
        values = np.array([m[name] for m in per_fold.values() if name in m], np.float64)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[name] = {"mean": float(values.mean()), "std": std, "n": int(len(values))}
    return {"folds": {k: dict(v) for k, v in per_fold.items()}, "metrics": summary}


def markdown_table(summary: dict, digits: int = 4) -> str:
    """The summary as a Markdown table: one row per metric, mean ± std, then each fold's value."""
    folds = list(summary["folds"])
    lines = ["| metric | mean ± std | " + " | ".join(folds) + " |",
             "|---|---|" + "---|" * len(folds)]
    for name, s in summary["metrics"].items():
        cells = [f"{summary['folds'][f][name]:.{digits}f}" if name in summary["folds"][f] else "" for f in folds]
        lines.append(f"| {name} | {s['mean']:.{digits}f} ± {s['std']:.{digits}f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cross_validate(folds: Sequence[str], train_fold: Callable[[str, list[str], str], Mapping[str, float]],
                   out_dir, *, held_out: Sequence[str] | None = None, write: bool = True,
                   verbose: bool = True) -> dict:
    """Trains and evaluates one model per held-out fold; returns ``summarize_folds`` of the results.

    Args:
        folds: all fold names (at least 2).
        train_fold: ``f(held_out, training_folds, fold_dir) -> {metric: float}``; trains on
            ``training_folds`` (every fold but ``held_out``), evaluates on ``held_out``, may write
            into ``fold_dir``.
        out_dir: gets ``<fold>/`` per fold (with ``metrics.json``), ``crossval.json``, ``crossval.md``.
        held_out: the folds to hold out in turn (default: all; fewer for a quicker estimate).
        write: write the files (False on non-chief workers of a cluster).
        verbose: print each fold's headline and the final table.

    Raises:
        ValueError: fewer than 2 folds, repeated fold names, or a held-out fold not in ``folds``.
    """
    folds = list(folds)
    if len(folds) < 2 or len(set(folds)) != len(folds):
        raise ValueError(f"cross_validate needs at least 2 distinct folds, got {folds}")
    held_out = folds if held_out is None else list(held_out)
    unknown = [f for f in held_out if f not in folds]
    if unknown or not held_out:
        raise ValueError(f"cross_validate: held_out must be some of {folds}, got {held_out}")
    out_dir = os.fspath(out_dir)
    per_fold = {}
    for fold in held_out:
        fold_dir = os.path.join(out_dir, fold)
        os.makedirs(fold_dir, exist_ok=True)
        metrics = {k: float(v) for k, v in train_fold(fold, [f for f in folds if f != fold], fold_dir).items()}
        per_fold[fold] = metrics
        if write:
            atomic_write(os.path.join(fold_dir, METRICS_FILE), json.dumps(metrics, indent=1))
        if verbose:
            print(f"[crossval] {fold}: " + ", ".join(f"{k}={v:.4f}" for k, v in list(metrics.items())[:6]),
                  flush=True)
    summary = summarize_folds(per_fold)
    table = markdown_table(summary)
    if write:
        atomic_write(os.path.join(out_dir, "crossval.json"), json.dumps(summary, indent=1))
        atomic_write(os.path.join(out_dir, "crossval.md"), table)
    if verbose:
        print(table, flush=True)
    return summary


def flat_metrics(evaluation: Mapping, dataset: str) -> dict:
    """Flattens ``evaluate_outputs`` of one data set: its summary means plus ``<attribute>/<metric>``."""
    keep = ("accuracy", "balanced_accuracy", "f1", "mae", "one_off_accuracy")
    flat = {k: v for k, v in evaluation["summary"].get(dataset, {}).items() if k.startswith("mean_")}
    prefix = f"{dataset}__"
    for output, m in evaluation["heads"].items():
        if output.startswith(prefix) and m.get("n", 0) > 0:
            flat.update({f"{output[len(prefix):]}/{k}": m[k] for k in keep if k in m})
    return flat


def join_splits(manifest: Mapping, splits: Sequence[str], name: str) -> dict:
    """A copy of a TFRecord manifest with one more split, ``name``, made of the shards of ``splits``."""
    missing = [s for s in splits if s not in manifest["splits"]]
    if missing:
        raise ValueError(f"join_splits: {missing} not in the manifest (has {sorted(manifest['splits'])})")
    joined = {"count": sum(manifest["splits"][s]["count"] for s in splits),
              "shards": [shard for s in splits for shard in manifest["splits"][s]["shards"]]}
    return {**manifest, "splits": {**manifest["splits"], name: joined}}


def run_dmtl_crossval(records, label_space, config, train_config, out_dir, *, batch_size: int,
                      folds: Sequence[str] | None = None, augment=None, max_steps_per_epoch: int | None = None,
                      strategy=None, on_epoch_begin=None, shards: int = 4, verbose: bool = True) -> dict:
    """Cross-validates a single-data-set DMTL model over the ``split`` field of ``records``.

    The records are converted once to TFRecords at the model's input size (``<out_dir>/records``,
    resumable; a private copy per worker of a cluster); fold ``k`` then trains on the shards of the
    other folds and is evaluated with its final weights.

    Args:
        records: FaceRecords whose ``split`` is the fold (``fold_0`` ...).
        label_space: the records' label space.
        config: a ``DmtlConfig`` with exactly one data set.
        train_config: ``TrainConfig``; ``steps_per_epoch`` is set per fold to one pass over its
            training folds (at most ``max_steps_per_epoch``).
        out_dir: run folder: ``records/``, one Trainer folder per fold, ``crossval.json``/``.md``.
        batch_size: global batch size.
        folds: folds to hold out in turn (default: all); each trains on all the other folds.
        augment: the pipeline's ``augment`` argument.
        strategy: a ``tf.distribute`` strategy (default: ``choose_strategy()``).
        on_epoch_begin: passed to each fold's ``Trainer``.
        shards: TFRecord shards per fold.
        verbose: progress output.

    Returns:
        The ``cross_validate`` summary.
    """
    from facezoo.data.pipeline import pipeline
    from facezoo.data.tfrecord import convert, read_manifest
    from facezoo.models.dmtl import dmtl
    from facezoo.tasks.dmtl import DmtlTask, collect_outputs, evaluate_outputs, for_model
    from facezoo.train.loop import Trainer
    from facezoo.train.strategy import choose_strategy, is_chief, worker_dir

    if len(config.datasets) != 1:
        raise ValueError(f"run_dmtl_crossval: the config must have one data set, it has "
                         f"{[d.name for d in config.datasets]}")
    dataset = config.datasets[0].name
    records = list(records)
    all_folds = fold_names(records)
    strategy = strategy or choose_strategy()
    out_dir = os.fspath(out_dir)
    records_dir = os.path.join(worker_dir(out_dir), "records")
    convert(records, label_space, records_dir, shards=shards, image_size=config.input_size, progress=verbose)
    manifest = read_manifest(records_dir)

    def train_fold(held_out, training, fold_dir):
        joined = join_splits(manifest, training, "crossval_train")
        n_train = joined["splits"]["crossval_train"]["count"]
        if n_train < batch_size:
            raise ValueError(f"holding out {held_out} leaves {n_train} training images, fewer than one batch "
                             f"of {batch_size}; lower the batch size")
        steps = math.ceil(n_train / batch_size)
        if max_steps_per_epoch:
            steps = min(steps, max_steps_per_epoch)
        train = pipeline(joined, "crossval_train", image_size=config.input_size, batch_size=batch_size,
                         training=True, augment=augment, seed=train_config.seed).repeat()
        val = pipeline(manifest, held_out, image_size=config.input_size, batch_size=128, training=False)
        val = for_model(val, dataset, config)
        task = DmtlTask(lambda: dmtl(config))
        trainer = Trainer(task, for_model(train, dataset, config),
                          dataclasses.replace(train_config, steps_per_epoch=steps), fold_dir,
                          global_batch=batch_size, strategy=strategy, val_data={dataset: val},
                          on_epoch_begin=on_epoch_begin)
        trainer.fit(verbose=verbose)
        outputs, labels, masks = collect_outputs(task.forward(trainer.model), val)
        evaluation = evaluate_outputs(config, outputs, labels, masks, datasets=[dataset])
        if is_chief():
            atomic_write(os.path.join(fold_dir, "eval.json"), json.dumps(evaluation, indent=1))
        return flat_metrics(evaluation, dataset)

    return cross_validate(all_folds, train_fold, out_dir, held_out=folds, write=is_chief(), verbose=verbose)

