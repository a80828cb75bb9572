"""``facezoo evaluate``: a model × a labelled split → metrics table, JSON and plots.

The model is a registered name (``dmtl_celeba``) or a ``.keras`` file; the data is a data set root
in its official layout (read with the data set's reader and split by the same rule the model card
records) or a TFRecord folder written by ``facezoo data convert``. Outputs, in ``--out``:
``metrics.json`` (per head and per data set, plus model size and batch-1 latency),
``per_attribute.png``, ``confusion_<head>.png`` for nominal/ordinal heads, ``parameters.png``
(parameter-value histogram), and ``misclassified/<head>/`` with up to ``--max-misclassified``
wrongly predicted images per head, named by label and prediction. Model cards carry only numbers
this command produced.
"""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import tensorflow as tf

from facezoo.data.splits import SPLIT_SALT, split_records
from facezoo.errors import MissingDataError, UsageError
from facezoo.models.dmtl import heads_of
from facezoo.tasks.dmtl import collect_outputs, evaluate_outputs, for_model


def resolve_model(model: str, directory: str | None = None):
    """``(keras model, card or None, file path)`` for a registered name or a ``.keras`` path.

    ``directory`` overrides where a named model's folder is (a packaged folder not yet installed).
    """
    from facezoo import zoo
    from facezoo.models.weights import load_keras
    from facezoo.zoo.registry import load_verified_keras
    if directory is None:
        if model.endswith(".keras") or os.path.isfile(model):
            if not os.path.isfile(model):
                raise MissingDataError(f"model file {model} does not exist")
            return load_keras(model), None, model
        directory = zoo.model_dir(model)
    card = zoo.ModelCard.from_json(os.path.join(directory, zoo.CARD_FILE))
    return load_verified_keras(directory, card), card, os.path.join(directory, card.weights_file)


def evaluation_records(dataset: str, data_dir: str, split: str, val_percent: int):
    """Records of ``split`` read from ``data_dir`` and split exactly as training split them."""
    from facezoo.data import READERS
    if dataset not in READERS:
        raise UsageError(f"no reader for data set {dataset!r}; known: {sorted(READERS)}")
    from facezoo.data.datasets import DATASETS
    official = dataset in DATASETS and DATASETS[dataset].official_split
    from facezoo.data.records import open_reader
    records = split_records(open_reader(READERS[dataset], data_dir, val_percent).records(), val_percent=val_percent,
                            official=official)
    chosen = [r for r in records if r.split == split]
    if not chosen:
        raise UsageError(f"{data_dir}: no records in split {split!r} (splits found: "
                         f"{sorted({r.split for r in records})})")
    return chosen


def batch1_latency_ms(model, runs: int = 50) -> float:
    """Median batch-1 latency of a cached ``tf.function`` forward pass, in milliseconds."""
    forward = tf.function(lambda x: model(x, training=False))
    x = tf.random.uniform((1, *model.input_shape[1:]), -1, 1)
    for _ in range(5):
        tf.nest.map_structure(lambda t: t.numpy(), forward(x))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), forward(x))
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def evaluate(model: str, data_dir: str, *, dataset: str | None = None, split: str = "val",
             val_percent: int | None = None, out: str | None = None, batch_size: int = 128,
             max_misclassified: int = 20, plots: bool = True, latency: bool = True,
             directory: str | None = None, flip_test: bool | None = None) -> dict:
    """Evaluates ``model`` on one labelled split; see the module docstring. Returns the metrics dict.

    ``flip_test``: average each output over the image and its mirror image
    (``facezoo.optimize.flip_test_network``); ``None`` follows the card's ``architecture["flip_test"]`` (off
    for a bare ``.keras`` file), as ``facezoo.load`` does."""
    from facezoo.data import READERS
    from facezoo.data.pipeline import from_records, named_input_errors, pipeline
    from facezoo.preprocessing import PreprocessSpec
    from facezoo.data.tfrecord import read_manifest

    keras_model, card, path = resolve_model(model, directory)
    cfg = keras_model.dmtl_config
    names = [d.name for d in cfg.datasets]
    dataset = dataset or (card.training_data.get("dataset") if card else None) or names[0]
    if dataset not in names:
        raise UsageError(f"model {model} has no {dataset!r} branch; it has {names}")
    space = next(d for d in cfg.datasets if d.name == dataset)
    from facezoo.attributes import LabelSpace
    label_space = LabelSpace(dataset, tuple(h.attribute for h in space.heads))
    if val_percent is None:
        val_percent = card.training_data.get("val_percent", 20) if card else 20

    sources = None
    spec = card.spec if card else PreprocessSpec(cfg.input_size, color="grey" if cfg.channels == 1 else "rgb")
    if os.path.isfile(os.path.join(data_dir, "manifest.json")):
        source, source_split = read_manifest(data_dir), split
        ds = pipeline(source, split, spec=spec, batch_size=batch_size, training=False, deterministic=True,
                      cache=False)
        data_desc = {"tfrecords": os.path.abspath(data_dir), "split": split}
    else:
        if not os.path.isdir(data_dir):
            raise MissingDataError(f"data directory {data_dir} does not exist")
        records = evaluation_records(dataset, data_dir, split, val_percent)
        sources, source, source_split = [r.image for r in records], records, None
        ds = from_records(records, READERS[dataset].label_space, spec=spec, batch_size=batch_size, training=False,
                          deterministic=True, cache=False, label_keys=label_space.names)
        data_desc = {"data_dir": os.path.abspath(data_dir), "split": split, "val_percent": val_percent,
                     "split_salt": SPLIT_SALT}

    ds = for_model(ds, dataset, cfg)
    if flip_test is None:
        flip_test = bool(card.architecture.get("flip_test", False)) if card else False
    from facezoo.optimize.fold import inference_network
    network = inference_network(keras_model, fold=False, flip_test=flip_test)
    forward = tf.function(lambda x: network(x, training=False))
    with named_input_errors(source, source_split):  # a damaged shard or image: an error naming the file
        outs, labs, msks = collect_outputs(forward, ds)
    result = evaluate_outputs(cfg, outs, labs, msks, datasets=[dataset],
                              abstain_below=card.abstain_below if card else 0.5)
    summary = result["summary"][dataset]
    report = {
        "model": model, "model_file": os.path.abspath(path), "dataset": dataset, "data": data_desc,
        "n_images": int(len(next(iter(labs.values())))), "summary": summary, "heads": result["heads"],
        "params": int(keras_model.count_params()), "size_bytes": os.path.getsize(path),
        "flip_test": flip_test,
    }
    if latency:  # of the network ``facezoo.load(...).predict`` runs (BatchNorm folded)
        network = inference_network(keras_model, flip_test=flip_test)
        report["batch1_latency_ms"] = round(batch1_latency_ms(network), 2)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(report, f, indent=1)
        if plots:
            _plots(keras_model, result["heads"], cfg, dataset, out)
        if sources is not None and max_misclassified:
            _misclassified(cfg, dataset, outs, labs, msks, sources, out, max_misclassified)
    return report


def _plots(keras_model, per_head, cfg, dataset, out):
    from facezoo.evaluation import plots
    per_head = {k: m for k, m in per_head.items() if m.get("n", 0) > 0}  # heads this split has labels for
    plots.plot_per_attribute(per_head, os.path.join(out, "per_attribute.png"),
                             title=f"{dataset}: accuracy per attribute (red: majority baseline)")
    for _ds, spec, name in heads_of(cfg):
        if name in per_head and spec.attribute.kind != "binary" and spec.attribute.num_classes <= 20:
            plots.plot_confusion(per_head[name]["confusion_matrix"], spec.attribute.classes,
                                 os.path.join(out, f"confusion_{spec.attribute.name}.png"),
                                 title=f"{dataset} {spec.attribute.name}")
    plots.plot_parameter_histogram(keras_model, os.path.join(out, "parameters.png"))


def _misclassified(cfg, dataset, outs, labs, msks, sources, out, limit):
    from facezoo.models.heads import decode_head
    root = os.path.join(out, "misclassified")
    shutil.rmtree(root, ignore_errors=True)
    for ds, spec, name in heads_of(cfg):
        if ds != dataset:
            continue
        attr = spec.attribute
        pred = decode_head(attr, outs[name])["index"]
        truth = labs[name].astype(np.int64).reshape(-1)
        wrong = np.where((np.abs(pred - truth) > spec.tolerance) & (msks[name] > 0.5))[0][:limit]
        if len(wrong) == 0:
            continue
        folder = os.path.join(root, attr.name)
        os.makedirs(folder, exist_ok=True)
        for i in wrong:
            base = os.path.basename(sources[i])
            shutil.copyfile(sources[i], os.path.join(
                folder, f"true-{attr.classes[truth[i]]}_pred-{attr.classes[pred[i]]}_{base}"))


def format_table(report: dict) -> str:
    """A plain-text table of per-head and summary metrics."""
    lines = [f"{report['model']} on {report['dataset']} ({report['n_images']} images, split "
             f"{report['data'].get('split')})", ""]
    lines.append(f"{'head':28s} {'n':>6s} {'acc':>7s} {'bal.acc':>7s} {'F1':>6s} {'major.':>7s} {'MAE':>6s}")
    for name, m in report["heads"].items():
        if not m.get("n"):
            continue
        mae = f"{m['mae']:6.2f}" if "mae" in m else "      "
        lines.append(f"{name.split('__', 1)[-1]:28s} {m['n']:6d} {m['accuracy']:7.4f} "
                     f"{m['balanced_accuracy']:7.4f} {m['f1']:6.3f} {m['majority_baseline']:7.4f} {mae}")
    lines.append("")
    for k, v in report["summary"].items():
        if k.startswith("mean_") or k.endswith("_mae"):
            lines.append(f"{k:28s} {v:.4f}")
    lines.append(f"{'params':28s} {report['params']:,}")
    lines.append(f"{'size on disk':28s} {report['size_bytes'] / 1e6:.2f} MB")
    if "batch1_latency_ms" in report:
        lines.append(f"{'batch-1 latency (tf.function, BN folded)':28s} {report['batch1_latency_ms']:.2f} ms")
    if report.get("flip_test"):
        lines.append("flip test: each output averaged over the image and its mirror image")
    return "\n".join(lines)
