"""Config-driven DMTL training runs: ``run_dmtl(RecipeConfig)``.

Every shipped attribute model is trained by this one code path:

    reader -> ``split_records`` (by identity where known) -> TFRecords (resumable) -> tf.data pipeline
    -> DMTL model -> ``Trainer(DmtlTask)`` (any tf.distribute strategy, checkpoint every epoch)
    -> best.keras -> evaluation of best.keras on the validation split -> curves PNG.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random

import tensorflow as tf

from facezoo.data import READERS
from facezoo.data.datasets import DATASETS
from facezoo.data.mixing import mix
from facezoo.data.pipeline import pipeline
from facezoo.data.splits import split_records
from facezoo.data.tfrecord import convert, read_manifest
from facezoo.files import atomic_write_json
from facezoo.data.records import open_reader, problems_csv
from facezoo.files import atomic_write
from facezoo.models.dmtl import DmtlConfig, dmtl
from facezoo.preprocessing import PreprocessSpec
from facezoo.tasks.dmtl import DmtlTask, collect_outputs, evaluate_outputs, for_model
from facezoo.train.config import RecipeConfig, TrainConfig
from facezoo.train.loop import Trainer
from facezoo.train.strategy import choose_strategy, is_chief, worker_dir


def prepare(name: str, data_dir: str, work_dir: str, image_size, val_percent: int = 20, shards: int = 4) -> str:
    """Reads, splits and converts one data set to TFRecords (resumable); returns the manifest folder."""
    out = os.path.join(work_dir, f"{name}-{image_size[0]}x{image_size[1]}-val{val_percent}")
    if os.path.exists(os.path.join(out, "manifest.json")):
        return out
    reader = open_reader(READERS[name], data_dir, val_percent)
    records = split_records(reader.records(), val_percent=val_percent, official=DATASETS[name].official_split)
    # Readers list files in folder order, which is often label order (FER-2013's class folders, UTKFace's
    # age-first names); the pipeline's shuffle buffer only mixes locally, so the shards get a fixed shuffle.
    random.Random(f"{name}-{val_percent}").shuffle(records)
    if reader.problems:
        os.makedirs(out, exist_ok=True)
        path = os.path.join(out, "problems.csv")
        atomic_write(path, problems_csv(reader.problems))
        print(f"  {len(reader.problems)} items skipped by the {name} reader, all listed in {path}", flush=True)

    def on_reject(source, reason):
        print(f"  rejected {reason}", flush=True)

    convert(records, DATASETS[name].label_space, out, shards=shards, image_size=tuple(image_size),
            on_reject=on_reject)
    return out


def input_spec(names, input_size) -> PreprocessSpec:
    """The preprocessing spec of a recipe's data sets (they must agree on colour) at ``input_size``."""
    colors = {DATASETS[n].color for n in names}
    if len(colors) > 1:
        raise ValueError(f"{'+'.join(names)}: data sets of different colour ({sorted(colors)}) cannot share a trunk")
    framings = {DATASETS[n].framing for n in names}
    return PreprocessSpec(tuple(input_size), color=colors.pop(),
                          framing=framings.pop() if len(framings) == 1 else None)


def build_config(names, *, backbone="resnet18", input_size=(112, 112), width=0.5, activation="relu",
                 dropout=0.3, branch_units=256, head_weights: dict | None = None) -> DmtlConfig:
    """The DMTL configuration of a recipe: the data sets' heads, with ``head_weights`` (attribute
    name -> loss weight) replacing the recipe's weights of those heads."""
    unknown_sets = [n for n in names if n not in DATASETS]
    if unknown_sets:
        raise ValueError(f"unknown data set(s) {unknown_sets}; choose from {sorted(DATASETS)}")
    spec = input_spec(names, input_size)
    head_weights = dict(head_weights or {})
    known = {h.attribute.name for n in names for h in DATASETS[n].heads}
    unknown = sorted(set(head_weights) - known)
    if unknown:
        raise ValueError(f"head weight for {', '.join(unknown)}: no such head in {'+'.join(names)} "
                         f"(heads: {', '.join(sorted(known))})")
    datasets = {n: [dataclasses.replace(h, weight=float(head_weights[h.attribute.name]))
                    if h.attribute.name in head_weights else h for h in DATASETS[n].heads] for n in names}
    return DmtlConfig(backbone=backbone, input_size=tuple(input_size), width=width, activation=activation,
                      dropout=dropout, branch_units=branch_units, datasets=datasets, channels=spec.channels)


def model_config(cfg: RecipeConfig) -> DmtlConfig:
    """The DMTL configuration a ``RecipeConfig`` trains."""
    return build_config(cfg.datasets, backbone=cfg.backbone, input_size=cfg.input_size, width=cfg.width,
                        activation=cfg.activation, dropout=cfg.dropout, head_weights=cfg.head_weights)


def run_dmtl(cfg: RecipeConfig, *, data_root: str, augment=None, verbose=True) -> dict:
    """Trains (or resumes) the DMTL model of ``cfg``; returns the final evaluation.

    ``cfg.init`` warm-starts the model from a ``.keras`` file: every weight with the same path and shape
    is copied (the shared trunk, the branches of data sets both models have); the rest starts from
    scratch. A resumed run restores its checkpoint over it. Data sets without an entry in
    ``cfg.data_dirs`` are read from ``<data_root>/<name>``.

    Writes into ``cfg.out``: ``records/`` (TFRecords), ``ckpt/`` (every epoch), ``best.keras``,
    ``last.keras``, ``history.csv``, ``state.json``, ``run.json`` (the config and its command), ``eval.json``
    (metrics of ``best.keras`` on the validation split) and ``curves.png``.
    """
    from facezoo.data.augment import DEFAULT_AUGMENT

    out = cfg.out
    os.makedirs(out, exist_ok=True)
    names = list(cfg.datasets)
    strategy = choose_strategy()
    if is_chief():
        atomic_write_json(os.path.join(out, "run.json"), {"config": cfg.to_dict(), "command": cfg.command(),
                                                         "replicas": strategy.num_replicas_in_sync})
    config = model_config(cfg)
    spec = input_spec(names, cfg.input_size)
    data_dirs = {n: cfg.data_dirs.get(n, DATASETS[n].data_dir(data_root)) for n in names}
    # Each worker of a cluster converts into its own folder: conversions sharing one would collide.
    manifests = {n: read_manifest(prepare(n, data_dirs[n], os.path.join(worker_dir(out), "records"),
                                          cfg.input_size, cfg.val_percent)) for n in names}
    aug = DEFAULT_AUGMENT if augment is None else augment
    train_sets, val_sets = {}, {}
    for n in names:
        train_sets[n] = for_model(pipeline(manifests[n], "train", spec=spec, batch_size=cfg.batch_size,
                                           training=True, augment=aug, seed=cfg.seed).repeat(), n, config)
        val_sets[n] = for_model(pipeline(manifests[n], "val", spec=spec, batch_size=128, training=False), n, config)
    counts = {n: manifests[n]["splits"]["train"]["count"] for n in names}
    steps = math.ceil(sum(counts.values()) / cfg.batch_size)
    if cfg.max_steps_per_epoch:
        steps = min(steps, cfg.max_steps_per_epoch)

    def score_fn(flat):
        return sum(DATASETS[n].score({k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith(n + "/")})
                   for n in names) / len(names)

    def build():
        model = dmtl(config)
        if cfg.init:
            from facezoo.models.weights import transfer_weights
            report = transfer_weights(cfg.init, model, datasets=cfg.init_branches)
            if is_chief():
                print(f"warm start from {cfg.init}: {len(report['copied'])} weights copied "
                      f"({len(report['adapted'])} RGB -> grey), {len(report['missing'])} new, "
                      f"{len(report['mismatched'])} of another shape", flush=True)
        return model

    train_cfg = TrainConfig(epochs=cfg.epochs, steps_per_epoch=steps, learning_rate=cfg.learning_rate,
                            weight_decay=cfg.weight_decay, monitor="score",
                            early_stopping_patience=cfg.early_stopping_patience, seed=cfg.seed)
    trainer = Trainer(DmtlTask(build, score_fn=score_fn), mix(train_sets, counts, seed=cfg.seed), train_cfg, out,
                      global_batch=cfg.batch_size, strategy=strategy, val_data=val_sets)
    history = trainer.fit(verbose=verbose)
    if not is_chief():
        return {}
    from facezoo.evaluation.plots import plot_history
    trainer.restore_best()
    forward = tf.function(lambda x: trainer.model(x, training=False))
    result = {"summary": {}, "heads": {}}
    for n, ds in val_sets.items():
        outputs, labels, masks = collect_outputs(forward, ds)
        r = evaluate_outputs(config, outputs, labels, masks, datasets=[n])
        result["summary"].update(r["summary"])
        result["heads"].update(r["heads"])
    result["best_epoch"] = max(history, key=lambda r: r.get("score", -1e9))["epoch"] if history else None
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(result, f, indent=1)
    plot_history(history, os.path.join(out, "curves.png"), names)
    return result


def prepare_face_run(args, image_size: int):
    """The shared start of the GAN recipes: threads, strategy, ``run.json`` and CelebA face batches.

    ``args`` are the recipe's parsed arguments (``threads``, ``out``, ``data_dir``, ``val_percent``,
    ``batch_size``, ``seed``, ``max_steps_per_epoch``).

    Returns:
        ``(strategy, train, val, steps_per_epoch)``.
    """
    from facezoo.tasks.gan import face_batches
    set_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    strategy = choose_strategy()
    if is_chief():
        atomic_write_json(os.path.join(args.out, "run.json"), {**vars(args), "replicas": strategy.num_replicas_in_sync})
    manifest = prepare("celeba", args.data_dir, os.path.join(worker_dir(args.out), "records"),
                       (image_size, image_size), val_percent=args.val_percent)
    train, val, count = face_batches(manifest, image_size, args.batch_size, seed=args.seed)
    steps = math.ceil(count / args.batch_size)
    if args.max_steps_per_epoch:
        steps = min(steps, args.max_steps_per_epoch)
    return strategy, train, val, steps


def set_threads(threads: int | None):
    """Limits TensorFlow's CPU threads (call before any op runs), e.g. to share cores between jobs."""
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already ran an op in this process (a recipe run in-process by a test)
            pass
