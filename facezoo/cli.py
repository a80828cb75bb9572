"""The ``facezoo`` command: ``list``, ``info``, ``analyze``, ``predict``, ``demo``, ``verify``, ``evaluate``,
``export``, ``bench``, ``generate``, ``upscale``, ``data convert``.

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
from facezoo.zoo.registry import ANALYZE_MODELS as DEFAULT_MODELS


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
        print(f"{'model':16s} {'task':16s} {'input':10s} {'headline metric (validation)':30s} licence")
        for r in rows:
            print(f"{r['name']:16s} {r['task']:16s} {r['input']:10s} {r['headline']:30s} {r['license_short']}")
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


GENERATOR_METRICS = ("fd_facezoo", "fd_real_floor", "psnr", "bicubic_psnr", "psnr_gain_db", "ssim", "bicubic_ssim")


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
    width = f" width {arch['width']}" if "width" in arch else ""
    flops = f", {arch['flops'] / 1e9:.2f} GFLOP/image" if "flops" in arch else ""
    backbone = f" {arch['backbone']}" if arch.get("backbone") else ""
    print(f"network     {arch.get('family', '?')}{backbone}{width}, "
          f"{arch.get('params', 0):,} parameters{flops}"
          + (", flip test (each face and its mirror image)" if arch.get("flip_test") else ""))
    heads = [a["name"] for space in card.label_spaces for a in space.get("attributes", [])]
    if heads:
        print(f"predicts    {len(heads)} heads: {', '.join(heads[:8])}{' ...' if len(heads) > 8 else ''}")
    for split, per_ds in card.metrics.items():
        for ds, summary in per_ds.items():
            shown = {k: v for k, v in summary.items() if isinstance(v, (int, float)) and (
                k.startswith("mean_") or k.endswith("_mae") or k.endswith("_accuracy") or k in GENERATOR_METRICS
                or k.endswith("_hit_rate_on") or k in ("accuracy", "auc") or k.startswith("tar_at_far"))}
            if not shown:
                continue
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
    # One result per line: json's C encoder (indent= falls back to its pure-Python one, ~0.5 ms a result).
    atomic_write(path, "[\n" + ",\n".join(json.dumps(r) for r in results) + "\n]\n")
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
    model = facezoo.load(args.model, backend=args.backend, precision=args.precision, **_flip_option(args))
    results = []
    chunk = args.batch_size
    try:
        for start in tqdm(range(0, len(files), chunk), desc="predict", unit="batch", disable=len(files) <= chunk,
                          file=sys.stderr):
            for r in model.predict(files[start:start + chunk], batch_size=chunk, errors="collect",
                                   check_face=args.check_face):
                results.append(r)
                if "error" in r:
                    print(f"facezoo predict: {r['error']}", file=sys.stderr)
                elif not args.json:
                    print(json.dumps(r) if args.jsonl else summary_line(r), flush=True)
    finally:
        _write_results(args.json, results)  # whatever finished, also when a later batch was interrupted
    errors = sum("error" in r for r in results)
    return 1 if errors == len(files) else 0


def _flip_option(args) -> dict:
    """``{"flip_test": bool}`` for ``facezoo.load`` when ``--flip-test`` overrides the card, else ``{}``."""
    flip = FLIP_CHOICES[args.flip_test]
    return {} if flip is None else {"flip_test": flip}


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
        if "identity" in face:
            who = face["identity"]
            head += f"[{who['name']}, distance {who['distance']:.3f}] " if who else "[unknown person] "
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
    facedb = None
    if args.facedb:
        from facezoo.inference.facedb_cli import open_db
        facedb = open_db(args.facedb)
    analyzer = FaceAnalyzer(_model_names(args.models), detector=args.detector, backend=args.backend,
                            precision=args.precision, flip_test=FLIP_CHOICES[args.flip_test])
    results = []
    try:
        for start in tqdm(range(0, len(files), args.batch_size), desc="analyze", unit="batch",
                          disable=len(files) <= args.batch_size, file=sys.stderr):
            chunk = files[start:start + args.batch_size]
            for path, r in zip(chunk, analyzer.analyze(chunk, min_face=args.min_face, max_faces=args.max_faces,
                                                       errors="collect", facedb=facedb)):
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
    from facezoo.face.analyze import FaceAnalyzer
    from facezoo.zoo import sample_photo
    names = [n for n in DEFAULT_MODELS if n in list_models()]
    if not names:
        print("facezoo demo: no shipped models are installed", file=sys.stderr)
        return 1
    check_output_file(args.out, "--out")
    photo = sample_photo()
    print(f"bundled photo: {photo} (NASA portrait of Eileen Collins, public domain, from scikit-image)")
    result = FaceAnalyzer(names, backend=args.backend, precision=args.precision,
                          flip_test=FLIP_CHOICES[args.flip_test]).analyze(photo)
    print("\n".join(face_lines(result)))
    from facezoo.face.annotate import annotate
    from facezoo.images import load_image
    annotate(load_image(photo), result).save(args.out, quality=90)
    print(f"annotated photo written to {args.out}")
    if args.json:
        print(json.dumps(result, indent=1))
    return 0


def cmd_verify(args) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    from facezoo.inference.embedding import verify
    detect = {"auto": "auto", "yes": True, "no": False}[args.detect]
    result = verify(args.a, args.b, model=args.model, detect=detect, threshold=args.threshold)
    if args.json:
        _write_json(args.json, result)
    verdict = "same person" if result["same"] else "different people"
    extra = f", pair head P(same) {result['probability']:.3f}" if "probability" in result else ""
    print(f"{verdict}: distance {result['distance']:.4f} (threshold {result['threshold']:.4f}){extra}")
    return 0


def _write_json(path, data):
    from facezoo.files import atomic_write
    atomic_write(path, json.dumps(data, indent=1) + "\n")


GENERATOR_TASKS = ("generation", "super_resolution")


def _registered_task(model: str):
    """The card task of a registered model name, None for a ``.keras`` file."""
    from facezoo import zoo
    if model.endswith(".keras") or os.path.isfile(model):
        return None
    return zoo.model_card(model).task


FLIP_CHOICES = {"card": None, "on": True, "off": False}


def cmd_evaluate(args) -> int:
    if _registered_task(args.model) in GENERATOR_TASKS:
        return _evaluate_generator(args)
    from facezoo.evaluation.verification import is_verification_model
    if is_verification_model(args.model):  # LFW pair protocol (facezoo.evaluation.verification)
        from facezoo.evaluation.verification import evaluate_verification
        from facezoo.evaluation.verification import format_table as verification_table
        report = evaluate_verification(args.model, args.data_dir, folds=args.folds, out=args.out,
                                       latency=not args.no_latency, flip_test=FLIP_CHOICES[args.flip_test])
        print(verification_table(report))
        if args.out:
            print(f"\nwrote {os.path.join(args.out, 'metrics.json')} and plots to {args.out}")
        return 0
    if args.folds is not None:
        raise UsageError(f"--folds applies to verification models only; {args.model} is not one")
    from facezoo.evaluation.report import evaluate, format_table
    report = evaluate(args.model, args.data_dir, dataset=args.dataset, split=args.split,
                      val_percent=args.val_percent, out=args.out, batch_size=args.batch_size,
                      max_misclassified=args.max_misclassified, latency=not args.no_latency,
                      flip_test=FLIP_CHOICES[args.flip_test])
    print(format_table(report))
    if args.out:
        print(f"\nwrote {os.path.join(args.out, 'metrics.json')} and plots to {args.out}")
    return 0


def _evaluate_generator(args) -> int:
    from facezoo.evaluation import generation
    from facezoo.zoo import model_card
    run = (generation.evaluate_generator if model_card(args.model).task == "generation"
           else generation.evaluate_upscaler)
    extra = {"hit_rate_n": args.hit_rate_images} if run is generation.evaluate_generator else {}
    report = run(args.model, args.data_dir, out=args.out, n=args.max_images, val_percent=args.val_percent, **extra)
    print(generation.format_table(report))
    if args.out:
        print(f"\nwrote {os.path.join(args.out, 'metrics.json')} and samples.png to {args.out}")
    return 0


def _attribute_settings(text: str) -> dict:
    """``"Male=1,Smiling=0"`` -> ``{"Male": 1, "Smiling": 0}``; anything else is a ``UsageError``."""
    out = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or value.strip() not in ("0", "1") or not key.strip():
            raise UsageError(f"--attributes {text!r}: write NAME=1 or NAME=0, comma-separated "
                             f"(e.g. Male=1,Smiling=1); got {part!r}")
        out[key.strip()] = int(value)
    return out


def _check_png(path: str, flag: str):
    if not path.lower().endswith(".png"):
        raise UsageError(f"{flag} {path}: the output is a PNG image; give a name ending in .png")
    check_output_file(path, flag)


MAX_GENERATE = 1024  # faces in one grid


def cmd_generate(args) -> int:
    if args.n > MAX_GENERATE:
        raise UsageError(f"--n {args.n}: at most {MAX_GENERATE} faces in one grid")
    attributes = _attribute_settings(args.attributes) if args.attributes else None
    _check_png(args.out, "--out")
    import facezoo
    from PIL import Image
    gen = facezoo.load(args.model)
    if getattr(gen.card, "task", None) != "generation":
        raise UsageError(f"{args.model} is a {gen.card.task} model, not a generator (facezoo list)")
    grid = gen.grid(args.n, seed=args.seed, attributes=attributes, columns=args.columns)
    Image.fromarray(grid).save(args.out, format="PNG")
    what = ", ".join(f"{k}={v}" for k, v in (attributes or {}).items())
    print(f"wrote {args.n} faces from {gen.card.name}" + (f" ({what})" if what else "")
          + (f", seed {args.seed}" if args.seed is not None else "") + f" to {args.out}")
    return 0


def cmd_upscale(args) -> int:
    os.makedirs(args.out, exist_ok=True)
    if not os.access(args.out, os.W_OK):
        raise UsageError(f"--out {args.out}: not writable")
    import facezoo
    from PIL import Image
    from tqdm.auto import tqdm

    from facezoo.images import ImageError
    files, problems = expand_inputs(args.paths)
    for line in problems:
        print(f"facezoo upscale: {line}", file=sys.stderr)
    if not files:
        print(f"facezoo upscale: no image files found in {' '.join(args.paths)}", file=sys.stderr)
        return 1
    sr = facezoo.load(args.model)
    if getattr(sr.card, "task", None) != "super_resolution":
        raise UsageError(f"{args.model} is a {sr.card.task} model, not a super-resolution model (facezoo list)")
    failed = 0
    for path in tqdm(files, desc="upscale", unit="image", disable=len(files) < 2, file=sys.stderr):
        try:
            big = sr.upscale(path, max_side=args.max_side)
        except (ImageError, UsageError) as e:
            print(f"facezoo upscale: {e}", file=sys.stderr)
            failed += 1
            continue
        target = os.path.join(args.out, f"{os.path.splitext(os.path.basename(path))[0]}.x{sr.scale}.png")
        Image.fromarray(big).save(target, format="PNG")
        print(f"{path} -> {target} ({big.shape[1]}x{big.shape[0]})", flush=True)
    return 1 if failed == len(files) else 0


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
    s.add_argument("--flip-test", choices=tuple(FLIP_CHOICES), default="card",
                   help="average each face's answers with its mirror image's: card follows the model card (default; "
                        "its metrics were measured so), off halves the network work, on forces it")


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
    s.add_argument("--no-face-check", dest="check_face", action="store_false",
                   help="skip the face detector's check of each crop (face_score / face_found; about 1 ms a crop)")
    _backend_flags(s)
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("analyze", help="detect, align and describe every face in photos (files or folders)")
    s.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    s.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="comma-separated models to run on every face (default %(default)s: every head in one pass)")
    s.add_argument("--detector", default="retinaface", choices=("retinaface", "mtcnn"),
                   help="face detector (default retinaface; mtcnn needs facezoo[detect])")
    s.add_argument("--json", metavar="FILE", help="write all results to FILE as JSON")
    s.add_argument("--jsonl", action="store_true", help="print one JSON object per image instead of a summary")
    s.add_argument("--annotate", metavar="DIR", help="write a copy of each photo with boxes, landmarks and attributes")
    s.add_argument("--recursive", action="store_true", help="also read images in sub-folders")
    s.add_argument("--min-face", type=positive_int, default=20, help="smallest face side in pixels (default 20)")
    s.add_argument("--max-faces", type=positive_int, default=None, help="at most this many faces per photo")
    s.add_argument("--batch-size", type=positive_int, default=16, help="photos per batch (default 16)")
    s.add_argument("--facedb", metavar="DB", help="name each face from this FaceDB (facezoo facedb enroll)")
    _backend_flags(s)
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("demo", help="analyze the bundled photo with every shipped model and write it annotated")
    s.add_argument("--out", default="facezoo-demo.jpg", help="annotated photo to write (default facezoo-demo.jpg)")
    s.add_argument("--json", action="store_true", help="also print the whole result as JSON")
    _backend_flags(s)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("verify", help="are the faces of two images the same person? (distance, threshold)")
    s.add_argument("a", metavar="IMAGE_A", help="photo (the largest face is used) or a crop in the model's framing")
    s.add_argument("b", metavar="IMAGE_B", help="the other image")
    s.add_argument("--model", default="verify_face", help="verification model (default verify_face)")
    s.add_argument("--detect", choices=("auto", "yes", "no"), default="auto",
                   help="auto: crops of the model's input size go straight in, other images are detected (default)")
    s.add_argument("--threshold", type=float, default=None, help="distance threshold (default: the model card's)")
    s.add_argument("--json", metavar="FILE", help="also write the whole result to FILE as JSON")
    s.set_defaults(func=cmd_verify)

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
    s.add_argument("--flip-test", choices=tuple(FLIP_CHOICES), default="card",
                   help="average every output (verification: embedding) over each face and its mirror image: "
                        "card follows the model card's architecture.flip_test (default), on / off override it")
    s.add_argument("--folds", help="verification models: LFW View-2 folds to score, e.g. 1-3 or 1,2,3 or all "
                                   "(default: the card's, the folds no training person is in)")
    s.add_argument("--max-images", type=positive_int, default=None,
                   help="generators: evaluate on at most this many validation faces (default all)")
    s.add_argument("--hit-rate-images", type=positive_int, default=200,
                   help="conditional generators: faces generated per attribute and setting (default 200)")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("generate", help="write a grid of generated faces (PNG)")
    s.add_argument("--model", default="dcgan_face64", help="a generation model (default dcgan_face64)")
    s.add_argument("--n", type=positive_int, default=16, help="how many faces (default 16, at most 1024)")
    s.add_argument("--out", default="faces.png", help="PNG grid to write (default faces.png)")
    s.add_argument("--attributes", metavar="A=1,B=0", help="conditional models: attributes to set, e.g. "
                   "Male=1,Smiling=1 (unset ones follow the training faces' frequencies)")
    s.add_argument("--seed", type=int, default=None, help="seed of the noise: the same seed gives the same faces")
    s.add_argument("--columns", type=positive_int, default=None, help="faces per row (default: about square)")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("upscale", help="super-resolve small face images (PNG files, x4)")
    s.add_argument("paths", nargs="+", metavar="IN", help="image files or folders of images")
    s.add_argument("--out", required=True, metavar="DIR", help="folder for <name>.x<scale>.png")
    s.add_argument("--model", default="srgan_face_x4", help="a super-resolution model (default srgan_face_x4)")
    s.add_argument("--max-side", type=positive_int, default=512, help="refuse inputs larger than this (512 px)")
    s.set_defaults(func=cmd_upscale)

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
    from facezoo.inference import facedb_cli  # imports nothing heavy: `facezoo list` works without TensorFlow
    facedb_cli.add_parser(sub)
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
