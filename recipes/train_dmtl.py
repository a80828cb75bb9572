"""Train a DMTL model on CelebA, UTKFace, or both through one trunk (thesis §3.3-3.4).

Reproduces the shipped ``dmtl_celeba`` and ``dmtl_utkface`` models (their cards record the exact
command). Resumable: run the same command again after an interruption and it continues from the
last finished epoch.

Examples:
    python recipes/train_dmtl.py --dataset celeba --epochs 2 --out runs/try
    python recipes/train_dmtl.py --dataset celeba+utkface --input-size 112x96
    python recipes/train_dmtl.py --dataset celeba+utkface --init runs/dmtl_celeba/best.keras
"""
import argparse
import os
import sys

from facezoo.train.recipe_args import parse_size


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="celeba",
                   help="celeba, utkface, or several joined by '+' (one trunk, one branch each)")
    p.add_argument("--data-dir", action="append", default=[], metavar="NAME=DIR",
                   help="data set root, e.g. celeba=/data/celeba (default: ../shared/data/<name>); "
                        "with a single data set a plain DIR is accepted")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64, help="global batch size")
    p.add_argument("--input-size", type=parse_size, default=(109, 89), help="S or HxW (default 109x89)")
    p.add_argument("--width", type=float, default=0.5, help="backbone channel multiplier")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate at batch 64 (scaled linearly)")
    p.add_argument("--weight-decay", type=float, default=0.05, help="AdamW decoupled weight decay")
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--val-percent", type=int, default=20)
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap steps (smoke tests)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", help="warm start from this .keras (e.g. runs/dmtl_celeba/best.keras): weights "
                                  "with the same path and shape are copied")
    p.add_argument("--head-weight", action="append", default=[], metavar="HEAD=W",
                   help="loss weight of one head, e.g. age=16 (repeatable; default: the recipe's, age=4)")
    p.add_argument("--out", default="runs/dmtl", help="run folder (checkpoints, logs, best.keras)")
    args = p.parse_args(argv)

    from facezoo.train.experiment import DATASETS, DEFAULT_DATA_ROOT, build_config, run_dmtl, set_threads
    set_threads(args.threads)
    names = args.dataset.split("+")
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        p.error(f"unknown data set(s) {unknown}; choose from {sorted(DATASETS)}")
    data_dirs = {n: os.path.join(DEFAULT_DATA_ROOT, n) for n in names}
    for item in args.data_dir:
        if "=" in item:
            k, v = item.split("=", 1)
            data_dirs[k] = v
        elif len(names) == 1:
            data_dirs[names[0]] = item
        else:
            p.error("with several data sets, give --data-dir NAME=DIR")
    head_weights = {}
    for item in args.head_weight:
        k, sep, v = item.partition("=")
        try:
            head_weights[k] = float(v)
        except ValueError:
            p.error(f"--head-weight {item!r}: expected HEAD=NUMBER, e.g. age=16")
        if not sep or head_weights[k] < 0:
            p.error(f"--head-weight {item!r}: expected HEAD=NUMBER (>= 0), e.g. age=16")
    try:
        build_config(names, head_weights=head_weights)  # names every head the data sets have
    except ValueError as e:
        p.error(str(e))
    for n, d in data_dirs.items():
        if not os.path.isdir(d):
            p.error(f"data set {n}: {d} is not a directory (give --data-dir {n}=DIR)")
    result = run_dmtl(names, data_dirs=data_dirs, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
                      input_size=args.input_size, width=args.width, backbone=args.backbone,
                      learning_rate=args.lr, weight_decay=args.weight_decay, dropout=args.dropout,
                      val_percent=args.val_percent, max_steps_per_epoch=args.max_steps_per_epoch,
                      seed=args.seed, init=args.init, head_weights=head_weights or None)
    for n, s in result.get("summary", {}).items():
        print(n, {k: round(v, 4) for k, v in s.items() if "mean" in k or "mae" in k or k in
                  ("gender_accuracy", "race_accuracy")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
