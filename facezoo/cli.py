"""The ``facezoo`` command: ``list``, ``info``, ``predict``, ``demo``, ``evaluate``, ``data convert``.

User errors (a missing file, an unknown model, a malformed label file) print one clear line on
stderr and exit with status 2; they never show a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_list(args) -> int:
    from facezoo import zoo
    names = zoo.list_models(args.pattern)
    if args.json:
        print(json.dumps([_card_row(zoo.model_card(n)) for n in names], indent=1))
        return 0
    if not names:
        print("no models match", args.pattern)
        return 0
    print(f"{'model':18s} {'task':34s} {'input':9s} {'headline metric (validation)':34s}")
    for n in names:
        row = _card_row(zoo.model_card(n))
        print(f"{n:18s} {row['task'][:34]:34s} {row['input']:9s} {row['headline']}")
    return 0


def _card_row(card):
    head = card.headline_value()
    return {"name": card.name, "task": card.task, "input": "x".join(map(str, card.input_size)),
            "headline": f"{head[0]} = {head[1]:.4f}" if head else "-", "license": card.license}


def cmd_info(args) -> int:
    from facezoo import zoo
    card = zoo.model_card(args.model)
    print(json.dumps({k: v for k, v in card.__dict__.items()}, indent=1))
    return 0


def expand_inputs(paths):
    """Files as given, and image files inside folders (recursively, sorted)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, _dirs, files in sorted(os.walk(p)):
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS))
        else:
            out.append(p)
    return out


def cmd_predict(args) -> int:
    import facezoo
    from tqdm.auto import tqdm
    files = expand_inputs(args.paths)
    if not files:
        print(f"facezoo predict: no image files found in {' '.join(args.paths)}", file=sys.stderr)
        return 1
    model = facezoo.load(args.model)
    results = []
    chunk = args.batch_size
    for start in tqdm(range(0, len(files), chunk), desc="predict", unit="batch", disable=len(files) <= chunk,
                      file=sys.stderr):
        results.extend(model.predict(files[start:start + chunk], batch_size=chunk, errors="collect"))
    errors = [r for r in results if "error" in r]
    for r in errors:
        print(f"facezoo predict: {r['error']}", file=sys.stderr)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, args.json)
        print(f"wrote {len(results) - len(errors)} results ({len(errors)} errors) to {args.json}", file=sys.stderr)
    else:
        for r in results:
            if "error" not in r:
                print(json.dumps(r) if args.jsonl else _summary_line(r))
    return 1 if len(errors) == len(results) else 0


def _summary_line(result) -> str:
    parts = []
    for name, a in result["attributes"].items():
        if a.get("abstain"):
            continue
        if "present" in a:
            if a["present"]:
                parts.append(name)
        elif "value" in a:
            parts.append(f"{name}={a['value']:.1f}")
        else:
            parts.append(f"{name}={a['label']}")
    return f"{result['input']}: {', '.join(parts) or '(no confident attribute)'}"


def cmd_demo(args) -> int:
    import facezoo
    names = [args.model] if args.model else facezoo.list_models()
    if not names:
        print("facezoo demo: no shipped models are installed", file=sys.stderr)
        return 1
    image = facezoo.sample_image()
    print(f"bundled sample: {image} (NASA portrait, public domain)")
    for name in names:
        model = facezoo.load(name)
        result = model.predict(image)
        print(f"\n{name} ({model.card.task}):")
        print("  " + _summary_line(result).split(": ", 1)[1])
        if args.verbose:
            print(json.dumps(result["attributes"], indent=1))
    return 0


def cmd_evaluate(args) -> int:
    from facezoo.evaluate import evaluate, format_table
    report = evaluate(args.model, args.data_dir, dataset=args.dataset, split=args.split,
                      val_percent=args.val_percent, out=args.out, batch_size=args.batch_size,
                      max_misclassified=args.max_misclassified, latency=not args.no_latency)
    print(format_table(report))
    if args.out:
        print(f"\nwrote {os.path.join(args.out, 'metrics.json')} and plots to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from facezoo import __version__
    p = argparse.ArgumentParser(prog="facezoo", description="Face attribute models for TensorFlow / Keras.")
    p.add_argument("--version", action="version", version=f"facezoo {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("list", help="list shipped models with their headline metric")
    s.add_argument("pattern", nargs="?", default="*", help="glob on model names (default: all)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="print a model's card")
    s.add_argument("model")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("predict", help="describe face crops (files or folders)")
    s.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    s.add_argument("--model", default="dmtl_celeba", help="registered model name (facezoo list)")
    s.add_argument("--json", metavar="FILE", help="write all results to FILE as JSON")
    s.add_argument("--jsonl", action="store_true", help="print one JSON object per image instead of a summary")
    s.add_argument("--batch-size", type=int, default=32)
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("demo", help="run the shipped models on the bundled sample photo")
    s.add_argument("--model", help="only this model (default: every shipped model)")
    s.add_argument("-v", "--verbose", action="store_true", help="also print every attribute as JSON")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("evaluate", help="metrics of a model on a labelled split (table, JSON, plots)")
    s.add_argument("model", help="registered model name or a .keras file")
    s.add_argument("--data-dir", required=True, help="data set root (official layout) or a TFRecord folder")
    s.add_argument("--dataset", help="which branch/data set (default: the model's training data set)")
    s.add_argument("--split", default="val", help="split to evaluate (default: val)")
    s.add_argument("--val-percent", type=int, default=None,
                   help="validation share used by the split rule (default: the model card's)")
    s.add_argument("--out", help="folder for metrics.json, plots and misclassified images")
    s.add_argument("--batch-size", type=int, default=128)
    s.add_argument("--max-misclassified", type=int, default=20, help="images kept per head (0: none)")
    s.add_argument("--no-latency", action="store_true", help="skip the batch-1 latency measurement")
    s.set_defaults(func=cmd_evaluate)

    from facezoo.data import cli as data_cli
    data_cli.add_parser(sub)
    return p


def main(argv=None) -> int:
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from facezoo.data.records import DataFormatError
    from facezoo.images import ImageError
    from facezoo.zoo import ChecksumError
    try:
        return args.func(args)
    except (DataFormatError, ImageError, ChecksumError, FileNotFoundError, ValueError) as e:
        print(f"facezoo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
