"""Accuracy of every export format of the shipped models, against the Keras fp32 model, on their validation split.

Run from the repository root (``python benchmarks/quantization.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

For each model: the validation split of its data set read and split exactly as ``facezoo evaluate``
reads it (``facezoo.evaluation.report.evaluation_records`` + the pipeline with the card's spec), run
through Keras (the reference, unfolded), ONNX Runtime fp32 and static QDQ int8 (built here, and the shipped
``model_int8.onnx`` that ``precision="int8"`` runs) and LiteRT fp32 / float16 / dynamic-range / full-int8 (all
from the BatchNorm-folded model). int8 is calibrated on ``--calibration`` images of the **training** split
(never validation), spread evenly over it; ``--onnx-int8-ops Conv`` quantizes only those operators (the
dense heads stay float). Reported per format: mean accuracy,
age MAE and gender accuracy with their change from fp32, the share of decisions (every binary and
nominal head's class, every abstain flag; and the classes alone) equal to fp32's, the agreement of
the ordinal (CORAL) rank, the largest change of a probability, file size and conversion time.
Prints a table and writes JSON.

    python benchmarks/quantization.py --data-root ../shared/data --out benchmarks/results/quantization.json
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time


def runtime_forward(run):
    """A numpy runner -> the ``forward(images) -> {name: tensor}`` that ``collect_outputs`` expects."""
    import tensorflow as tf
    return lambda images: {k: tf.constant(v) for k, v in run(images.numpy()).items()}


def decisions(cfg, outputs, card):
    """``{name: int array}``: the class of every binary/nominal head, the CORAL rank, abstain flags."""
    import numpy as np

    from facezoo.models.dmtl import confidence_name, heads_of
    from facezoo.models.heads import decode_confidence, decode_head
    out = {}
    for _ds, spec, name in heads_of(cfg):
        attr = spec.attribute
        dec = decode_head(attr, outputs[name])
        if attr.kind == "binary":
            out[name] = (dec["positive"] >= card.thresholds.get(attr.name, 0.5)).astype(np.int64)
        else:
            out[name] = dec["index"]
        conf = confidence_name(name)
        if conf in outputs:
            out[conf] = (decode_confidence(outputs[conf]) < card.abstain_below).astype(np.int64)
    return out


def probabilities(cfg, outputs):
    import numpy as np

    from facezoo.models.dmtl import heads_of
    from facezoo.models.heads import decode_head
    return np.concatenate([decode_head(spec.attribute, outputs[name])["probabilities"].reshape(-1)
                           for _ds, spec, name in heads_of(cfg)])


def measure_model(name, data_root, args, work):
    import numpy as np
    import tensorflow as tf

    import facezoo
    from facezoo import zoo
    from facezoo.data import READERS
    from facezoo.data.pipeline import from_records
    from facezoo.evaluation.report import evaluation_records
    from facezoo.backends.build import calibration_arrays, quantize_onnx
    from facezoo.export import calibration_inputs
    from facezoo.export.onnx import onnx_runner, write_onnx
    from facezoo.export.tflite import tflite_runner, write_tflite
    from facezoo.optimize import fold_batch_norm
    from facezoo.tasks.dmtl import collect_outputs, evaluate_outputs, for_model

    fm = facezoo.load(name, backend="keras")
    card, cfg, spec = fm.card, fm.model.dmtl_config, fm.card.spec
    dataset = card.training_data["dataset"]
    val_percent = card.training_data.get("val_percent", 20)
    from facezoo.data.datasets import DATASETS
    root = DATASETS[dataset].data_dir(data_root) if dataset in DATASETS else os.path.join(data_root, dataset)
    val = evaluation_records(dataset, root, "val", val_percent)
    train = evaluation_records(dataset, root, "train", val_percent)
    label_keys = [h.attribute.name for d in cfg.datasets if d.name == dataset for h in d.heads]

    def evaluate(forward):
        ds = from_records(val, READERS[dataset].label_space, spec=spec, batch_size=64, training=False,
                          deterministic=True, cache=False, label_keys=label_keys)
        outs, labs, msks = collect_outputs(forward, for_model(ds, dataset, cfg))
        summary = evaluate_outputs(cfg, outs, labs, msks, datasets=[dataset],
                                   abstain_below=card.abstain_below)["summary"][dataset]
        return outs, summary

    t0 = time.perf_counter()
    keras_forward = tf.function(lambda x: fm.model(x, training=False))
    ref_outs, ref = evaluate(keras_forward)
    rows = [{"model": name, "format": "keras fp32 (reference)", "n_images": len(val), **_metrics(ref, ref),
             "decisions_kept": 1.0, "class_decisions_kept": 1.0, "rank_kept": 1.0,
             "max_prob_change": 0.0, "size_mb": card.size_bytes / 1e6,
             "convert_s": 0.0, "eval_s": time.perf_counter() - t0}]
    print(_row_text(rows[0]), flush=True)
    ref_dec, ref_prob = decisions(cfg, ref_outs, card), probabilities(cfg, ref_outs)
    folded = fold_batch_norm(fm.model)
    step = len(train) / min(args.calibration, len(train))
    calibration_files = [train[int(i * step)].image for i in range(min(args.calibration, len(train)))]
    calibration = onnx_calibration = None
    onnx_int8 = "onnx int8" + (f" ({'+'.join(args.onnx_int8_ops)} only)" if args.onnx_int8_ops else "") + (
        f" ({args.onnx_int8_method})" if args.onnx_int8_method != "minmax" else "") + (
        f" (float: {', '.join(args.onnx_int8_exclude)})" if args.onnx_int8_exclude else "")
    formats = [("onnx fp32", "onnx", None), (onnx_int8, "onnx", "int8"), ("onnx int8 (shipped)", "shipped", "int8"),
               ("tflite fp32", "tflite", None), ("tflite float16", "tflite", "float16"),
               ("tflite dynamic-range", "tflite", "dynamic"), ("tflite int8", "tflite", "int8")]
    fp32_onnx = os.path.join(work, f"{name}_onnx_fp32.onnx")
    for label, fmt, quantize in formats:
        if args.formats and label not in args.formats:
            continue
        t0 = time.perf_counter()
        path = os.path.join(work, f"{name}_{fmt}_{quantize or 'fp32'}.{'tflite' if fmt == 'tflite' else 'onnx'}")
        if fmt == "shipped":
            path = os.path.join(zoo.model_dir(name), "model_int8.onnx")
            if not os.path.isfile(path):
                continue
            run = onnx_runner(path)
        elif fmt == "onnx":
            if not os.path.isfile(fp32_onnx):
                write_onnx(folded, spec, fp32_onnx)
            if quantize == "int8":
                if onnx_calibration is None:
                    onnx_calibration = calibration_arrays(card, calibration_files, len(calibration_files))
                quantize_onnx(fp32_onnx, path, onnx_calibration, op_types=args.onnx_int8_ops,
                              method=args.onnx_int8_method, exclude=args.onnx_int8_exclude)
            else:
                path = fp32_onnx
            run = onnx_runner(path)
        else:
            if quantize == "int8" and calibration is None:
                calibration = calibration_inputs(fm, calibration_files, limit=len(calibration_files))
            write_tflite(folded, spec, path, quantize=quantize, calibration=calibration)
            run = tflite_runner(path)
        convert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        outs, summary = evaluate(runtime_forward(run))
        dec = decisions(cfg, outs, card)
        nominal = [k for k in dec if not _is_ordinal(cfg, k)]
        ordinal = [k for k in dec if _is_ordinal(cfg, k)]
        kept = np.mean(np.concatenate([dec[k] == ref_dec[k] for k in nominal]))
        classes = [k for k in nominal if not k.endswith("_conf")]
        class_kept = np.mean(np.concatenate([dec[k] == ref_dec[k] for k in classes]))
        rank = np.mean(np.concatenate([dec[k] == ref_dec[k] for k in ordinal])) if ordinal else None
        rows.append({"model": name, "format": label, "n_images": len(val), **_metrics(summary, ref),
                     "decisions_kept": float(kept), "class_decisions_kept": float(class_kept),
                     "kept_per_decision": {k: float(np.mean(dec[k] == ref_dec[k])) for k in dec},
                     "rank_kept": None if rank is None else float(rank),
                     "max_prob_change": float(np.abs(probabilities(cfg, outs) - ref_prob).max()),
                     "size_mb": os.path.getsize(path) / 1e6, "convert_s": convert_s,
                     "eval_s": time.perf_counter() - t0,
                     **({"calibration_images": len(calibration_files)} if quantize == "int8" else {})})
        print(_row_text(rows[-1]), flush=True)
    return rows


def _is_ordinal(cfg, key):
    from facezoo.models.dmtl import heads_of
    kinds = {name: spec.attribute.kind for _ds, spec, name in heads_of(cfg)}
    return kinds.get(key) == "ordinal"


def _metrics(summary, ref):
    out = {}
    for k in ("mean_accuracy", "age_mae", "gender_accuracy", "race_accuracy"):
        if k in summary:
            out[k] = float(summary[k])
            out[f"{k}_change"] = float(summary[k] - ref[k])
    return out


def _row_text(r):
    def cell(key, fmt, scale=1.0):
        return format(r[key] * scale, fmt) if key in r and r[key] is not None else "-"
    return (f"{r['model']:13s} {r['format']:22s} {cell('mean_accuracy', '.4f'):>8s} "
            f"{cell('mean_accuracy_change', '+.3f', 100):>7s} {cell('age_mae', '.3f'):>7s} "
            f"{cell('age_mae_change', '+.3f'):>7s} {cell('gender_accuracy', '.4f'):>8s} "
            f"{cell('decisions_kept', '.2f', 100):>7s} {cell('class_decisions_kept', '.2f', 100):>7s} "
            f"{cell('rank_kept', '.1f', 100):>6s} "
            f"{cell('max_prob_change', '.4f'):>8s} {cell('size_mb', '.1f'):>6s}")


HEADER = (f"{'model':13s} {'format':22s} {'mean acc':>8s} {'Δ pt':>7s} {'age MAE':>7s} {'Δ yr':>7s} "
          f"{'gender':>8s} {'kept %':>7s} {'class %':>7s} {'rank%':>6s} {'max Δp':>8s} {'MB':>6s}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                       "shared", "data"))
    p.add_argument("--models", nargs="*", help="registered names (default: all shipped)")
    p.add_argument("--formats", nargs="*", help="only these rows (e.g. 'tflite int8')")
    p.add_argument("--calibration", type=int, default=500, help="training images for int8 calibration")
    p.add_argument("--onnx-int8-method", choices=("minmax", "percentile", "entropy"), default="minmax",
                   help="calibration of the built ONNX int8 graph (default minmax, as shipped)")
    p.add_argument("--onnx-int8-exclude", nargs="*", default=(), metavar="NAME",
                   help="ONNX nodes whose name contains one of these stay float in the built int8 graph")
    p.add_argument("--onnx-int8-ops", nargs="*", default=None, metavar="OP",
                   help="ONNX operator types the built int8 graph quantizes (default: all ORT can; e.g. Conv)")
    p.add_argument("--out", help="write the rows as JSON here")
    p.add_argument("--write-cards", action="store_true",
                   help="record the results in each shipped card's quantization section (card.json rewritten)")
    args = p.parse_args(argv)

    import tensorflow as tf

    import facezoo
    rows = []
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="facezoo-quant-") as work:
        for name in args.models or facezoo.list_models():
            rows.extend(measure_model(name, args.data_root, args, work))
    print("\n" + HEADER)
    for r in rows:
        print(_row_text(r))
    command = "python benchmarks/quantization.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "tensorflow": tf.__version__}, "command": command, "results": rows}, f, indent=1)
    if args.write_cards:
        write_cards(rows, command)
    return 0


CARD_KEYS = ("mean_accuracy_change", "age_mae_change", "gender_accuracy_change", "race_accuracy_change",
             "decisions_kept", "class_decisions_kept", "max_prob_change", "size_mb", "calibration_images")


def write_cards(rows, command):
    """Writes each model's rows into its card's ``quantization`` section and re-hashes its folder."""
    from facezoo import zoo
    from facezoo.zoo.package import finalize_files
    for name in sorted({r["model"] for r in rows}):
        card = zoo.model_card(name)
        mine = [r for r in rows if r["model"] == name]
        previous = (card.quantization or {}).get("formats", {})
        formats = {r["format"]: {k: round(r[k], 6) for k in CARD_KEYS if r.get(k) is not None}
                   for r in mine if not r["format"].startswith("keras")}
        for fmt in formats:  # a row measured again replaces the old one; the others keep their command
            previous.pop(fmt, None)
        old_command = (card.quantization or {}).get("command")
        commands = {fmt: old_command for fmt in previous if old_command}
        commands.update((card.quantization or {}).get("commands", {}))
        commands.update({fmt: command for fmt in formats})
        card.quantization = {
            "command": command, "split": "val", "n_images": mine[0]["n_images"],
            "reference": "keras fp32 (the shipped model.keras); every export is BatchNorm-folded",
            "formats": {**previous, **formats}, "commands": commands}
        finalize_files(zoo.model_dir(name), card)
        print(f"wrote the quantization section of {name}'s card")


if __name__ == "__main__":
    sys.exit(main())
