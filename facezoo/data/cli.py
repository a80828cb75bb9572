"""``facezoo data convert``: an official data set layout to TFRecord shards, from the command line.

``add_parser(subparsers)`` adds the ``data`` command to the main parser and ``run(args)``
executes it. User errors are raised as ``DataFormatError`` / ``FileNotFoundError`` /
``ValueError`` with a message that says what to change; ``facezoo.cli`` prints them as one line.

Nothing is only printed: every item the reader skipped goes to ``problems.csv`` and every image that could not
be read to ``rejects.csv`` in ``--out``; the terminal shows the first few problems and each reject as it is found.
"""
from __future__ import annotations

import argparse
import os
import sys
from facezoo.errors import UsageError

PROBLEMS = "problems.csv"
SHOWN_PROBLEMS = 5


def parse_image_size(text: str) -> tuple[int, int]:
    """``"112"`` -> (112, 112); ``"218x178"`` -> (218, 178) as (height, width)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 8:
        raise argparse.ArgumentTypeError(f"expected S or HxW with sides >= 8 (e.g. 112 or 218x178), got {text!r}")
    return size


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds ``data convert <dataset> --root DIR --out DIR ...`` to ``subparsers``."""
    from facezoo.data import READERS

    data = subparsers.add_parser("data", help="prepare data sets (convert to TFRecords)")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser(
        "convert", help="read a data set in its official layout and write sharded TFRecords",
        description="Reads a data set in its official layout and writes sharded TFRecords, manifest.json, "
                    f"rejects.csv (images that could not be read) and {PROBLEMS} (items the reader skipped) to "
                    "--out. Re-running resumes: finished shards are kept.")
    p.add_argument("dataset", choices=sorted(READERS), help="data set layout to read")
    p.add_argument("--root", required=True, help="data set root in the official layout")
    p.add_argument("--out", required=True, help="output folder for shards and manifest.json")
    p.add_argument("--shards", type=int, default=8, help="shards per split (default: 8, fewer for small splits)")
    p.add_argument("--image-size", type=parse_image_size, metavar="S|HxW",
                   help="store faces resized to this size (default: keep the original bytes)")
    p.add_argument("--align", action="store_true",
                   help="align faces to the 5-point template using the data set's landmarks (needs --image-size)")
    p.add_argument("--val-percent", type=int, metavar="P",
                   help="move P%% of the train split's identities to a new val split")
    p.add_argument("--max-reject-fraction", type=float, default=0.05,
                   help="give up when more than this share of images cannot be decoded (default: 0.05)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return data


def _records(args):
    """Reads the records, applies ``--val-percent``, writes all of the reader's problems to ``--out`` and prints
    the first few."""
    from facezoo.data import READERS
    from facezoo.data.records import open_reader, problems_csv
    from facezoo.data.splits import DEFAULT_VAL_PERCENT, split_records
    from facezoo.files import atomic_write

    reader = open_reader(READERS[args.dataset], args.root,
                         DEFAULT_VAL_PERCENT if args.val_percent is None else args.val_percent)
    records = list(reader.records())
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, PROBLEMS)
    atomic_write(path, problems_csv(reader.problems))
    if reader.problems:
        print(f"{len(reader.problems)} item(s) skipped by the {args.dataset} reader, all listed in {path}:",
              file=sys.stderr)
        for p in reader.problems[:SHOWN_PROBLEMS]:
            print(f"  {p.source}: {p.reason}", file=sys.stderr)
        if len(reader.problems) > SHOWN_PROBLEMS:
            print(f"  ... and {len(reader.problems) - SHOWN_PROBLEMS} more", file=sys.stderr)
    if not records:
        raise UsageError(f"the {args.dataset} reader found no usable images under {args.root}")
    if args.val_percent is not None:
        if not 0 < args.val_percent < 100:
            raise UsageError(f"--val-percent must be between 1 and 99, got {args.val_percent}")
        if not any(r.split in ("train", "val") for r in records):
            raise UsageError(f"{args.dataset} has no train or val split to take a val split from")
        # The recipes' rule: train and val re-split by identity, the official test split kept aside.
        records = split_records(records, args.val_percent)
    return reader.label_space, records


def run(args) -> int:
    """Executes ``facezoo data convert``; returns the exit status."""
    from tqdm import tqdm

    from facezoo.data.tfrecord import MANIFEST, REJECTS, convert

    if args.align and args.image_size is None:
        raise UsageError("--align needs --image-size (the size of the aligned faces)")
    if args.shards < 1:
        raise UsageError(f"--shards must be at least 1, got {args.shards}")
    label_space, records = _records(args)
    if args.align and all(r.landmarks is None for r in records):
        raise UsageError(f"cannot --align: this data set ({args.dataset} under {args.root}) has no landmarks")
    manifest = convert(records, label_space, args.out, shards=args.shards, image_size=args.image_size,
                       align=args.align, max_reject_fraction=args.max_reject_fraction,
                       progress=not args.no_progress,
                       on_reject=lambda source, reason: tqdm.write(f"rejected {reason}", file=sys.stderr))
    counts = ", ".join(f"{s}: {v['count']}" for s, v in manifest["splits"].items())
    print(f"wrote {os.path.join(args.out, MANIFEST)} ({counts}; {manifest['rejects']} rejected, listed in "
          f"{os.path.join(args.out, REJECTS)})")
    return 0
