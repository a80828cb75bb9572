"""Config-driven DMTL training runs: data set recipes, preparation, training, final evaluation.

A recipe script is an argument parser over ``run_dmtl``; everything it does lives here so that
every shipped model is trained by the same code path:

    reader -> split (by identity where known) -> TFRecords (resumable) -> tf.data pipeline
    -> DMTL model -> Trainer (any tf.distribute strategy, checkpoint every epoch) -> best.keras
    -> evaluation of best.keras on the validation split -> curves PNG.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os

import tensorflow as tf

from facezoo import attributes as A
from facezoo.data import READERS
from facezoo.data.pipeline import pipeline
from facezoo.data.records import identity_split
from facezoo.data.tfrecord import convert, read_manifest
from facezoo.models.dmtl import DmtlConfig, HeadSpec, dmtl
from facezoo.train.inputs import for_model, mix
from facezoo.train.recipe_args import DEFAULT_DATA_ROOT
from facezoo.train.strategy import choose_strategy, is_chief, worker_dir
from facezoo.train.trainer import Trainer, TrainConfig, evaluate_outputs


@dataclasses.dataclass(frozen=True)
class DatasetRecipe:
    """How one data set is read, split and attached to a DMTL model.

    Args:
        name: reader name in ``facezoo.data.READERS``.
        label_space: its label space.
        heads: its DMTL heads.
        split_rule: how train/validation are separated (recorded on model cards).
        score: validation score used to pick the best epoch: ``mean_accuracy``, or ``age_gender_race``
            = mean(gender accuracy, race accuracy) - age MAE / 100.
    """

    name: str
    label_space: A.LabelSpace
    heads: tuple
    split_rule: str
    score: str = "mean_accuracy"


DATASETS = {
    "celeba": DatasetRecipe(
        "celeba", A.CELEBA_40, tuple(HeadSpec(a) for a in A.CELEBA_40),
        "identity-disjoint: identity i is validation iff int(md5('facezoo-val:'+i), 16) % 100 < 20 "
        "(identity_CelebA.txt)"),
    "utkface": DatasetRecipe(
        "utkface", A.UTKFACE,
        (HeadSpec(A.UTKFACE["age"], weight=4.0, tolerance=5), HeadSpec(A.UTKFACE["gender"]),
         HeadSpec(A.UTKFACE["race"])),
        "by file: image f is validation iff int(md5('facezoo-val:'+f), 16) % 100 < 20 (UTKFace has no "
        "identity labels)", score="age_gender_race"),
}


def dataset_score(recipe: DatasetRecipe, summary: dict) -> float:
    """The scalar a recipe's best epoch is chosen by (higher is better)."""
    if recipe.score == "mean_accuracy":
        return summary["mean_accuracy"]
    return (summary["gender_accuracy"] + summary["race_accuracy"]) / 2 - summary["age_mae"] / 100


def prepare(name: str, data_dir: str, work_dir: str, image_size, val_percent: int = 20, shards: int = 4) -> str:
    """Reads, splits and converts one data set to TFRecords (resumable); returns the manifest folder."""
    out = os.path.join(work_dir, f"{name}-{image_size[0]}x{image_size[1]}-val{val_percent}")
    if os.path.exists(os.path.join(out, "manifest.json")):
        return out
    reader = READERS[name](data_dir)
    records = identity_split(list(reader.records()), val_percent=val_percent)
    for p in reader.problems[:5]:
        print(f"  skipped {p.source}: {p.reason}")
    if reader.problems:
        print(f"  {len(reader.problems)} items skipped by the {name} reader")
    convert(records, DATASETS[name].label_space, out, shards=shards, image_size=tuple(image_size))
    return out


def build_config(names, *, backbone="resnet18", input_size=(112, 112), width=0.5, activation="relu",
                 dropout=0.3, branch_units=256, head_weights: dict | None = None) -> DmtlConfig:
    """The DMTL configuration of a recipe: the data sets' heads, with ``head_weights`` (attribute
    name -> loss weight) replacing the recipe's weights of those heads."""
    head_weights = dict(head_weights or {})
    known = {h.attribute.name for n in names for h in DATASETS[n].heads}
    unknown = sorted(set(head_weights) - known)
    if unknown:
        raise ValueError(f"head weight for {', '.join(unknown)}: no such head in {'+'.join(names)} "
                         f"(heads: {', '.join(sorted(known))})")
    datasets = {n: [dataclasses.replace(h, weight=float(head_weights[h.attribute.name]))
                    if h.attribute.name in head_weights else h for h in DATASETS[n].heads] for n in names}
    return DmtlConfig(backbone=backbone, input_size=tuple(input_size), width=width, activation=activation,
                      dropout=dropout, branch_units=branch_units, datasets=datasets)


def run_dmtl(names, *, data_dirs: dict, out: str, epochs: int, batch_size: int, input_size, width: float,
             backbone: str = "resnet18", learning_rate: float = 2e-3, weight_decay: float = 5e-4,
             val_percent: int = 20, augment=None, activation="relu", dropout=0.3, max_steps_per_epoch=None,
             early_stopping_patience: int = 0, seed: int = 0, init: str | None = None,
             head_weights: dict | None = None, verbose=True) -> dict:
    """Trains (or resumes) a DMTL model on one or several data sets; returns the final evaluation.

    ``head_weights`` (attribute name -> loss weight) overrides the recipe's head weights.
    ``init`` warm-starts the model from a ``.keras`` file (e.g. another run's ``best.keras``): every
    weight with the same path and shape is copied (the shared trunk, the branches of data sets both
    models have); the rest starts from scratch. A resumed run restores its checkpoint over it.

    Writes into ``out``: ``records/`` (TFRecords), ``ckpt/`` (every epoch), ``best.keras``,
    ``last.keras``, ``history.csv``, ``state.json``, ``run.json`` (the arguments), ``eval.json``
    (metrics of ``best.keras`` on the validation split) and ``curves.png``.
    """
    from facezoo.data.augment import DEFAULT_AUGMENT

    os.makedirs(out, exist_ok=True)
    input_size = tuple(input_size)
    strategy = choose_strategy()
    replicas = strategy.num_replicas_in_sync
    run_args = {k: v for k, v in locals().items() if k not in ("strategy", "DEFAULT_AUGMENT")}
    if is_chief():
        with open(os.path.join(out, "run.json"), "w") as f:
            json.dump({**run_args, "replicas": replicas}, f, indent=1, default=str)

    config = build_config(names, backbone=backbone, input_size=input_size, width=width,
                          activation=activation, dropout=dropout, head_weights=head_weights)
    # Each worker of a cluster converts into its own folder: conversions sharing one would collide.
    manifests = {n: prepare(n, data_dirs[n], os.path.join(worker_dir(out), "records"), input_size, val_percent)
                 for n in names}
    aug = DEFAULT_AUGMENT if augment is None else augment
    train_sets, val_sets, n_train = {}, {}, 0
    for n in names:
        manifest = read_manifest(manifests[n])
        n_train += manifest["splits"]["train"]["count"]
        train_sets[n] = for_model(pipeline(manifest, "train", image_size=input_size, batch_size=batch_size,
                                           training=True, augment=aug, seed=seed).repeat(), n, config)
        val_sets[n] = for_model(pipeline(manifest, "val", image_size=input_size, batch_size=128,
                                         training=False), n, config)
    weights = {n: read_manifest(manifests[n])["splits"]["train"]["count"] for n in names}
    steps = math.ceil(n_train / batch_size)
    if max_steps_per_epoch:
        steps = min(steps, max_steps_per_epoch)

    def score_fn(flat):
        return sum(dataset_score(DATASETS[n], {k.split("/", 1)[1]: v for k, v in flat.items()
                                               if k.startswith(n + "/")}) for n in names) / len(names)

    train_cfg = TrainConfig(epochs=epochs, steps_per_epoch=steps, learning_rate=learning_rate,
                            weight_decay=weight_decay, monitor="score",
                            early_stopping_patience=early_stopping_patience, seed=seed)
    def build():
        model = dmtl(config)
        if init:
            from facezoo.models.backbone import transfer_weights
            report = transfer_weights(init, model)
            if is_chief():
                print(f"warm start from {init}: {len(report['copied'])} weights copied, "
                      f"{len(report['missing'])} new, {len(report['mismatched'])} of another shape", flush=True)
        return model

    trainer = Trainer(build, mix(train_sets, weights, seed=seed), train_cfg, out,
                      global_batch=batch_size, strategy=strategy, val_data=val_sets, score_fn=score_fn)
    history = trainer.fit(verbose=verbose)
    if not is_chief():
        return {}
    from facezoo.train.plots import plot_history
    trainer.restore_best()
    result = {"summary": {}, "heads": {}}
    for n, ds in val_sets.items():
        outputs, labels, masks = trainer.predict_dataset(ds)
        r = evaluate_outputs(config, outputs, labels, masks, datasets=[n])
        result["summary"].update(r["summary"])
        result["heads"].update(r["heads"])
    result["best_epoch"] = max(history, key=lambda r: r.get("score", -1e9))["epoch"] if history else None
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
    plot_history(history, os.path.join(out, "curves.png"), names)
    return result


def set_threads(threads: int | None):
    """Limits TensorFlow's CPU threads (call before any op runs), e.g. to share cores between jobs."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
