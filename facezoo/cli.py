"""The ``facezoo`` command: ``list``, ``info``, ``analyze``, ``predict``, ``demo``, ``evaluate``, ``export``,
``bench``, ``data convert``.

Anything a user caused (a missing file, an unknown model, a bad flag, a malformed label file, a
damaged model folder, TensorFlow not installed) raises a ``facezoo.errors.UserError``: the command
prints one line on stderr and exits with status 2. Any other exception is a bug and keeps its
traceback. TensorFlow's start-up log lines are hidden unless ``--verbose``; TensorFlow is not imported at all
when the command's models run on an exported-graph backend (``--backend``, ``facezoo.backends``).

Exit status: 0 success; 1 nothing to do or every input failed (``predict``); 2 user error; 130
interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from facezoo.errors import UsageError, UserError
from facezoo.images import IMAGE_EXTENSIONS
from facezoo.train.recipe_args import positive_int


@contextlib.contextmanager
def _stderr_silenced():
    """Sends file descriptor 2 to /dev/null (C++ log lines that TF writes before logging is set up)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_tensorflow():
    """Imports TensorFlow and Keras with their start-up log lines hidden (numerics are not changed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with _stderr_silenced():
            import keras  # noqa: F401
            import tensorflow as tf
    except ImportError:
        return  # facezoo.errors.require_tensorflow says what to install when TensorFlow is needed
    tf.get_logger().setLevel("ERROR")
    try:
        from absl import logging as absl_logging
        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass


# ----------------------------------------------------------------------------- list / info
def cmd_list(args) -> int:
    from facezoo import zoo
    names = zoo.list_models(args.pattern)
    rows, broken = [], []
    for n in names:
        try:
            rows.append(_card_row(zoo.model_card(n)))
        except UserError as e:
            broken.append((n, str(e)))
    if args.json:
        print(json.dumps(rows + [{"name": n, "error": e} for n, e in broken], indent=1))
    elif not names:
        print("no models match", args.pattern)
    else:
        print(f"{'model':16s} {'task':11s} {'input':10s} {'headline metric (validation)':30s} licence")
        for r in rows:
            print(f"{r['name']:16s} {r['task']:11s} {r['input']:10s} {r['headline']:30s} {r['license_short']}")
    for n, e in broken:
        print(f"facezoo list: {n}: broken model folder: {e}", file=sys.stderr)
    return 0


def _short_license(text: str) -> str:
    upper = text.upper()
    if "NON-COMMERCIAL" in upper or "NON COMMERCIAL" in upper:
        return "non-commercial research only"
    return text.split(".")[0][:40]


def _card_row(card):
    head = card.headline_value()
    spec = card.spec
    return {"name": card.name, "task": card.task, "input": "x".join(map(str, spec.input_size)) + f" {spec.color}",
            "headline": f"{head[0]} = {head[1]:.4f}" if head else "-", "license": card.license,
            "license_short": _short_license(card.license)}


def cmd_info(args) -> int:
    from facezoo import zoo
    card = zoo.model_card(args.model)
    if args.json:
        print(json.dumps(card.to_dict(), indent=1))
        return 0
    spec = card.spec
    print(f"{card.name}  ({card.task})")
    print(f"  {card.description}")
    framing = spec.framing.name if spec.framing else "not recorded"
    size = f"{spec.input_size[0]}x{spec.input_size[1]}"
    print(f"input       {size} {spec.color}, pixels*{spec.scale:.6g}{spec.offset:+g}, "
          f"{spec.resize} resize, face framing: {framing}")
    arch = card.architecture
    print(f"network     {arch.get('family', '?')} {arch.get('backbone', '')} width {arch.get('width', '?')}, "
          f"{arch.get('params', 0):,} parameters, {arch.get('flops', 0) / 1e9:.2f} GFLOP/image")
    heads = [a["name"] for space in card.label_spaces for a in space.get("attributes", [])]
    if heads:
        print(f"predicts    {len(heads)} heads: {', '.join(heads[:8])}{' ...' if len(heads) > 8 else ''}")
    for split, per_ds in card.metrics.items():
        for ds, summary in per_ds.items():
            shown = {k: v for k, v in summary.items()
                     if k.startswith("mean_") or k.endswith("_mae") or k.endswith("_accuracy")}
            text = ", ".join(f"{k} {v:.4f}" for k, v in list(shown.items())[:8])
            print(f"metrics     {split} / {ds}: {text}")
    print(f"measured by {card.evaluate_command}")
    print(f"licence     {card.license}")
    print("files       " + ", ".join(f"{n} ({h[:12]})" for n, h in card.files.items()))
    print("full card:  facezoo info " + card.name + " --json")
    return 0


# ----------------------------------------------------------------------------- predict / demo
def expand_inputs(paths, recursive: bool = True):
    """Files as given, and image files inside folders (sorted; sub-folders too when ``recursive``).

    Returns:
        ``(files, problems)``: ``problems`` are ``"path: reason"`` lines for folders that could not be read.
    """
    out, problems = [], []
    for p in paths:
        if os.path.isdir(p):
            def onerror(err):
                problems.append(f"{err.filename}: cannot read folder ({err.strerror})")
            for root, dirs, files in os.walk(p, onerror=onerror):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS))
                if not recursive:
                    break
        else:
            out.append(p)
    return out, problems


def check_output_file(path: str, flag: str):
    """Raises ``UsageError`` unless ``path`` can be written as a file (checked before any work starts)."""
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path}: is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path}: not writable")


def _write_results(path, results):
    """Writes ``results`` to the ``--json`` file ``path`` (if any) atomically and says how many there are."""
    if not path:
        return
    from facezoo.files import atomic_write
    atomic_write(path, json.dumps(results, indent=1) + "\n")
    n_err = sum("error" in r for r in results)
    print(f"wrote {len(results) - n_err} results ({n_err} errors) to {path}", file=sys.stderr)


def cmd_predict(args) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    import facezoo
    from tqdm.auto import tqdm
    files, problems = expand_inputs(args.paths)
    for line in problems:
        print(f"facezoo predict: {line}", file=sys.stderr)
    if not files:
        print(f"facezoo predict: no image files found in {' '.join(args.paths)}", file=sys.stderr)
        return 1
    model = facezoo.load(args.model, backend=args.backend, precision=args.precision)
    results = []
    chunk = args.batch_size
    try:
        for start in tqdm(range(0, len(files), chunk), desc="predict", unit="batch", disable=len(files) <= chunk,
                          file=sys.stderr):
            for r in model.predict(files[start:start + chunk], batch_size=chunk, errors="collect"):
                results.append(r)
                if "error" in r:
                    print(f"facezoo predict: {r['error']}", file=sys.stderr)
                elif not args.json:
                    print(json.dumps(r) if args.jsonl else summary_line(r), flush=True)
    finally:
        _write_results(args.json, results)  # whatever finished, also when a later batch was interrupted
    errors = sum("error" in r for r in results)
    return 1 if errors == len(files) else 0


def summary_line(result) -> str:
    """One line per image: present attributes, values and labels; abstaining heads marked "(unsure)"."""
    parts = []
    for name, a in result["attributes"].items():
        unsure = " (unsure)" if a.get("abstain") else ""
        if "present" in a:
            if a["present"]:
                parts.append(name + unsure)
        elif "value" in a:
            parts.append(f"{name}={a['value']:.1f}{unsure}")
        else:
            parts.append(f"{name}={a['label']}{unsure}")
    warning = " [no face found in this image: answers are not meaningful]" if result.get("face_found") is False else ""
    return f"{result['input']}: {', '.join(parts) or '(no attribute present)'}{warning}"


def face_lines(result) -> list[str]:
    """``analyze`` output for one image as lines: the image, then one line per face."""
    faces = result["faces"]
    lines = [f"{result['input']}: {len(faces)} face{'s' if len(faces) != 1 else ''}"]
    for i, face in enumerate(faces):
        r = face["faceRectangle"]
        head = f"  face {i + 1} at {r['left']},{r['top']} {r['width']}x{r['height']} (score {face['score']:.2f}): "
        lines.append(head + summary_line({"input": "", "attributes": face["attributes"]}).split(": ", 1)[1])
    return lines


def _model_names(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--models: give one or more model names separated by commas")
    return names


def cmd_analyze(args) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    if args.annotate:
        os.makedirs(args.annotate, exist_ok=True)
        if not os.access(args.annotate, os.W_OK):
            raise UsageError(f"--annotate {args.annotate}: not writable")
    from tqdm.auto import tqdm

    from facezoo.face.analyze import FaceAnalyzer
    files, problems = expand_inputs(args.paths, recursive=args.recursive)
    for line in problems:
        print(f"facezoo analyze: {line}", file=sys.stderr)
    if not files:
        print(f"facezoo analyze: no image files found in {' '.join(args.paths)}", file=sys.stderr)
        return 1
    analyzer = FaceAnalyzer(_model_names(args.models), detector=args.detector, backend=args.backend,
                            precision=args.precision)
    results = []
    try:
        for start in tqdm(range(0, len(files), args.batch_size), desc="analyze", unit="batch",
                          disable=len(files) <= args.batch_size, file=sys.stderr):
            chunk = files[start:start + args.batch_size]
            for path, r in zip(chunk, analyzer.analyze(chunk, min_face=args.min_face, max_faces=args.max_faces,
                                                       errors="collect")):
                results.append(r)
                if "error" in r:
                    print(f"facezoo analyze: {r['error']}", file=sys.stderr)
                    continue
                if args.annotate:
                    _write_annotated(path, r, args.annotate)
                if not args.json:
                    print(json.dumps(r) if args.jsonl else "\n".join(face_lines(r)), flush=True)
    finally:
        _write_results(args.json, results)  # whatever finished, also when a later batch was interrupted
    errors = sum("error" in r for r in results)
    return 1 if errors == len(files) else 0


def _write_annotated(path, result, folder):
    from facezoo.face.annotate import annotate
    from facezoo.images import load_image
    base = os.path.splitext(os.path.basename(path))[0]
    target = os.path.join(folder, f"{base}.annotated.jpg")
    annotate(load_image(path), result).save(target, quality=90)
    return target


def cmd_demo(args) -> int:
    from facezoo import list_models
    from facezoo.face.analyze import DEFAULT_MODELS, FaceAnalyzer
    from facezoo.zoo import sample_photo
    names = [n for n in DEFAULT_MODELS if n in list_models()]
    if not names:
        print("facezoo demo: no shipped models are installed", file=sys.stderr)
        return 1
    check_output_file(args.out, "--out")
    photo = sample_photo()
    print(f"bundled photo: {photo} (NASA portrait of Eileen Collins, public domain, from scikit-image)")
    result = FaceAnalyzer(names, backend=args.backend, precision=args.precision).analyze(photo)
    print("\n".join(face_lines(result)))
    from facezoo.face.annotate import annotate
    from facezoo.images import load_image
    annotate(load_image(photo), result).save(args.out, quality=90)
    print(f"annotated photo written to {args.out}")
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


def cmd_evaluate(args) -> int:
    from facezoo.evaluation.report import evaluate, format_table
    report = evaluate(args.model, args.data_dir, dataset=args.dataset, split=args.split,
                      val_percent=args.val_percent, out=args.out, batch_size=args.batch_size,
                      max_misclassified=args.max_misclassified, latency=not args.no_latency)
    print(format_table(report))
    if args.out:
        print(f"\nwrote {os.path.join(args.out, 'metrics.json')} and plots to {args.out}")
    return 0


def cmd_export(args) -> int:
    from facezoo.export import check_export_arguments, export_model
    check_export_arguments(args.format, args.out, args.quantize, args.calibration)
    from facezoo import zoo
    zoo.model_dir(args.model)  # an unknown name fails here, before TensorFlow builds anything
    path = export_model(args.model, format=args.format, out=args.out, quantize=args.quantize, version=args.version,
                        calibration=args.calibration, calibration_limit=args.calibration_images)
    print(f"wrote {path}")
    return 0


def cmd_bench(args) -> int:
    from facezoo.bench import run_bench
    run_bench(args)
    return 0


def _backend_flags(s):
    from facezoo.backends import BACKENDS, PRECISIONS
    s.add_argument("--backend", help=f"what runs the networks: {', '.join(BACKENDS)} or auto (default: the fastest "
                   "installed; facezoo.backends)")
    s.add_argument("--precision", help=f"{', '.join(PRECISIONS)} or auto (the CPU decides); default fp32")


def build_parser() -> argparse.ArgumentParser:
    from facezoo import __version__
    p = argparse.ArgumentParser(prog="facezoo", description="Face attribute models for TensorFlow / Keras.",
                                epilog="Exit status: 0 ok, 1 nothing done, 2 user error, 130 interrupted.")
    p.add_argument("--version", action="version", version=f"facezoo {__version__}")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up log lines")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("list", help="list shipped models with their headline metric and licence")
    s.add_argument("pattern", nargs="?", default="*", help="glob on model names (default: all)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="summarise a model's card (task, input, metrics, licence, files)")
    s.add_argument("model")
    s.add_argument("--json", action="store_true", help="print the whole card as JSON")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("predict", help="describe face crops (files or folders)")
    s.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    s.add_argument("--model", default="dmtl_celeba", help="registered model name (facezoo list)")
    s.add_argument("--json", metavar="FILE", help="write all results to FILE as JSON")
    s.add_argument("--jsonl", action="store_true", help="print one JSON object per image instead of a summary")
    s.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass (default 32)")
    _backend_flags(s)
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("analyze", help="detect, align and describe every face in photos (files or folders)")
    s.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    s.add_argument("--models", default="dmtl_celeba,dmtl_utkface,expression_fer",
                   help="comma-separated models to run on every face (default dmtl_celeba,dmtl_utkface,expression_fer)")
    s.add_argument("--detector", default="retinaface", choices=("retinaface", "mtcnn"),
                   help="face detector (default retinaface; mtcnn needs facezoo[detect])")
    s.add_argument("--json", metavar="FILE", help="write all results to FILE as JSON")
    s.add_argument("--jsonl", action="store_true", help="print one JSON object per image instead of a summary")
    s.add_argument("--annotate", metavar="DIR", help="write a copy of each photo with boxes, landmarks and attributes")
    s.add_argument("--recursive", action="store_true", help="also read images in sub-folders")
    s.add_argument("--min-face", type=positive_int, default=20, help="smallest face side in pixels (default 20)")
    s.add_argument("--max-faces", type=positive_int, default=None, help="at most this many faces per photo")
    s.add_argument("--batch-size", type=positive_int, default=16, help="photos per batch (default 16)")
    _backend_flags(s)
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("demo", help="analyze the bundled photo with every shipped model and write it annotated")
    s.add_argument("--out", default="facezoo-demo.jpg", help="annotated photo to write (default facezoo-demo.jpg)")
    s.add_argument("--json", action="store_true", help="also print the whole result as JSON")
    _backend_flags(s)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("evaluate", help="metrics of a model on a labelled split (table, JSON, plots)")
    s.add_argument("model", help="registered model name or a .keras file")
    s.add_argument("--data-dir", required=True, help="data set root (official layout) or a TFRecord folder")
    s.add_argument("--dataset", help="which branch/data set (default: the model's training data set)")
    s.add_argument("--split", default="val", help="split to evaluate (default: val)")
    s.add_argument("--val-percent", type=positive_int, default=None,
                   help="validation share used by the split rule (default: the model card's)")
    s.add_argument("--out", help="folder for metrics.json, plots and misclassified images")
    s.add_argument("--batch-size", type=positive_int, default=128)
    s.add_argument("--max-misclassified", type=int, default=20, help="images kept per head (0: none)")
    s.add_argument("--no-latency", action="store_true", help="skip the batch-1 latency measurement")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("export", help="write a model for TF Serving (SavedModel), ONNX or TFLite")
    s.add_argument("model", help="registered model name (facezoo list)")
    s.add_argument("--format", required=True, help="saved_model, onnx or tflite")
    s.add_argument("--quantize", help="TFLite only: float16 or dynamic (weights), int8 (weights and activations, "
                   "needs --calibration)")
    s.add_argument("--calibration", metavar="DIR", help="int8: folder of face crops like the training images")
    s.add_argument("--calibration-images", type=positive_int, default=500, help="int8: at most this many (500)")
    s.add_argument("--version", type=positive_int, default=1, help="SavedModel version folder (default 1)")
    s.add_argument("--out", required=True, metavar="DIR", help="output folder (SavedModel: DIR/<name>/<version>/ "
                   "and DIR/models.config; else DIR/<name>[_<quantize>].<format>)")
    s.set_defaults(func=cmd_export)

    from facezoo.bench import add_bench_arguments
    s = sub.add_parser("bench", help="speed, size, cold start and accuracy change of one model on every backend")
    add_bench_arguments(s)
    s.set_defaults(func=cmd_bench)

    from facezoo.data import cli as data_cli
    data_cli.add_parser(sub)
    return p


def _needs_tensorflow(args) -> bool:
    """Whether the command will import TensorFlow (then its start-up lines are hidden by importing it first)."""
    if args.command in ("list", "info"):
        return False
    if args.command in ("predict", "analyze", "demo"):
        from facezoo.backends import resolve
        return resolve("attributes", args.backend, args.precision)[0] == "keras"
    return True


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        if not args.verbose and _needs_tensorflow(args):
            quiet_tensorflow()
        return args.func(args)
    except UserError as e:
        print(f"facezoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
