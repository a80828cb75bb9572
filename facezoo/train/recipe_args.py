"""The command-line options recipes share; importing this module stays cheap (no TensorFlow), so
``--help`` answers at once.

Recipes run from a checkout (``python recipes/<name>.py`` in the repository root); their default data
root is ``$FACEZOO_DATA``, else ``../shared/data`` beside the checkout — found from the recipe's own
file, never from the installed package (which may sit in site-packages).
"""
from __future__ import annotations

import argparse
import os

from facezoo.train.config import RecipeConfig


def default_data_root(recipe_file: str) -> str:
    """``$FACEZOO_DATA``, else ``<checkout>/../shared/data`` for a recipe at ``<checkout>/recipes/x.py``."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(recipe_file)))
    return os.environ.get("FACEZOO_DATA", os.path.join(checkout, "..", "shared", "data"))


def without_option(argv, option: str) -> list:
    """``argv`` without ``option`` and its value (``--opt V`` or ``--opt=V``): for recorded commands, where an option
    such as ``--threads`` only says how one machine ran them."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out


def parse_size(text: str) -> tuple[int, int]:
    """``"S"`` or ``"HxW"`` -> ``(H, W)``; an ``argparse`` type for ``--input-size``."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected S or HxW (e.g. 112 or 109x89), got {text!r}")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def positive_int(text: str) -> int:
    """An ``argparse`` type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_training_arguments(parser: argparse.ArgumentParser, *, data_dir: str, epochs: int, batch_size: int,
                           input_size: str, width: float, out: str, learning_rate: float = 2e-3,
                           weight_decay: float = RecipeConfig.weight_decay):
    """Adds the options every recipe shares (``--data-dir`` ... ``--out``)."""
    parser.add_argument("--data-dir", default=data_dir, help=f"data set root (default {data_dir})")
    parser.add_argument("--epochs", type=positive_int, default=epochs, help=f"epochs (default {epochs})")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help=f"global batch size (default {batch_size})")
    parser.add_argument("--input-size", type=parse_size, default=parse_size(input_size),
                        help=f"model input, S or HxW (default {input_size})")
    parser.add_argument("--width", type=float, default=width, help=f"backbone channel multiplier (default {width})")
    parser.add_argument("--lr", type=float, default=learning_rate,
                        help=f"peak learning rate at batch 64, scaled linearly (default {learning_rate})")
    parser.add_argument("--weight-decay", type=float, default=weight_decay,
                        help=f"AdamW decoupled weight decay (default {weight_decay})")
    parser.add_argument("--max-steps-per-epoch", type=positive_int, default=None,
                        help="cap steps per epoch (smoke tests)")
    parser.add_argument("--threads", type=positive_int, default=None, help="TensorFlow CPU threads (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and data order")
    parser.add_argument("--out", default=out, help=f"run folder (default {out})")


def recipe_parser(description: str) -> argparse.ArgumentParser:
    """The parser of ``recipes/train_dmtl.py``: one option per ``RecipeConfig`` field (plus ``--threads``)."""
    d = RecipeConfig()
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="+".join(d.datasets),
                   help="a data set (celeba, utkface, fer2013), or several joined by '+' (one trunk, a branch each)")
    p.add_argument("--data-dir", action="append", default=[], metavar="NAME=DIR",
                   help="data set root, e.g. celeba=/data/celeba (default: $FACEZOO_DATA or ../shared/data, "
                        "then /<name>); with a single data set a plain DIR is accepted")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help=f"epochs (default {d.epochs})")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help=f"global batch size (default {d.batch_size})")
    p.add_argument("--input-size", type=parse_size, default=d.input_size,
                   help=f"S or HxW (default {_size(d.input_size)})")
    p.add_argument("--backbone", default=d.backbone, help=f"registered backbone (default {d.backbone})")
    p.add_argument("--width", type=float, default=d.width, help=f"backbone channel multiplier (default {d.width})")
    p.add_argument("--dropout", type=float, default=d.dropout, help=f"branch dropout (default {d.dropout})")
    p.add_argument("--activation", default=d.activation, choices=("relu", "relu6", "leaky_relu"),
                   help=f"backbone activation (default {d.activation}; relu6 for an ImageNet / facezoo-face trunk)")
    p.add_argument("--lr", type=float, default=d.learning_rate,
                   help=f"peak learning rate at batch 64, scaled linearly (default {d.learning_rate})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay,
                   help=f"AdamW decoupled weight decay (default {d.weight_decay})")
    p.add_argument("--val-percent", type=positive_int, default=d.val_percent,
                   help=f"validation share of the split (default {d.val_percent})")
    p.add_argument("--head-weight", action="append", default=[], metavar="HEAD=W",
                   help="loss weight of one head, e.g. age=16 (repeatable; default: the data set's, age=4)")
    p.add_argument("--init", help="warm start from this .keras (e.g. runs/dmtl_celeba/best.keras): weights "
                                  "with the same path and shape are copied")
    p.add_argument("--init-branch", action="append", default=[], metavar="SRC=DST",
                   help="with --init: the --init model's data set SRC fills this model's data set DST (branches "
                        "and heads), e.g. face=fer2013_face (repeatable)")
    p.add_argument("--max-steps-per-epoch", type=positive_int, default=None, help="cap steps (smoke tests)")
    p.add_argument("--early-stopping-patience", type=int, default=0, help="epochs without improvement (0: off)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=positive_int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--out", default=d.out, help=f"run folder: checkpoints, logs, best.keras (default {d.out})")
    return p


def _size(size) -> str:
    return f"{size[0]}x{size[1]}"


def config_from_args(parser: argparse.ArgumentParser, args) -> RecipeConfig:
    """The ``RecipeConfig`` of parsed ``recipe_parser`` arguments; bad values are ``parser.error``s."""
    names = tuple(args.dataset.split("+"))
    data_dirs = {}
    for item in args.data_dir:
        if "=" in item:
            k, v = item.split("=", 1)
            data_dirs[k] = v
        elif len(names) == 1:
            data_dirs[names[0]] = item
        else:
            parser.error("with several data sets, give --data-dir NAME=DIR")
    head_weights = {}
    for item in args.head_weight:
        k, sep, v = item.partition("=")
        try:
            head_weights[k] = float(v)
        except ValueError:
            parser.error(f"--head-weight {item!r}: expected HEAD=NUMBER, e.g. age=16")
        if not sep or head_weights[k] < 0:
            parser.error(f"--head-weight {item!r}: expected HEAD=NUMBER (>= 0), e.g. age=16")
    init_branches = {}
    for item in args.init_branch:
        k, sep, v = item.partition("=")
        if not sep or not k or v not in names:
            parser.error(f"--init-branch {item!r}: expected SRC=DST with DST one of {', '.join(names)}")
        init_branches[k] = v
    if init_branches and not args.init:
        parser.error("--init-branch needs --init")
    if not 0 < args.val_percent < 100:
        parser.error(f"--val-percent must be between 1 and 99, got {args.val_percent}")
    return RecipeConfig(datasets=names, out=args.out, data_dirs=data_dirs, epochs=args.epochs,
                        batch_size=args.batch_size, input_size=args.input_size, backbone=args.backbone,
                        width=args.width, dropout=args.dropout, activation=args.activation,
                        learning_rate=args.lr, weight_decay=args.weight_decay,
                        val_percent=args.val_percent, head_weights=head_weights, init=args.init,
                        init_branches=init_branches,
                        max_steps_per_epoch=args.max_steps_per_epoch,
                        early_stopping_patience=args.early_stopping_patience, seed=args.seed)


def parse_recipe(argv, description: str = "") -> RecipeConfig:
    """``recipe_parser`` + ``config_from_args`` over ``argv``."""
    p = recipe_parser(description)
    return config_from_args(p, p.parse_args(argv))
