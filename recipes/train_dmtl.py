"""Train a DMTL model on CelebA, UTKFace, FER-2013, or several through one trunk (thesis §3.3-3.4).

Run from the repository root. Reproduces the shipped ``dmtl_celeba`` and ``dmtl_utkface`` models (their
cards record the exact commands, written from the config each run saved in ``run.json``). Resumable: run
the same command again after an interruption and it continues from the last checkpoint. Data sets are
read from ``$FACEZOO_DATA`` or ``../shared/data`` (``--data-dir NAME=DIR`` for your own copy).

Examples:
    python recipes/train_dmtl.py --dataset celeba --epochs 2 --out runs/try
    python recipes/train_dmtl.py --dataset celeba+utkface --input-size 112x96
    python recipes/train_dmtl.py --dataset celeba+utkface --init runs/dmtl_celeba/best.keras
"""
import os
import sys

from facezoo.train.recipe_args import config_from_args, default_data_root, recipe_parser


def main(argv=None):
    p = recipe_parser(__doc__)
    args = p.parse_args(argv)
    cfg = config_from_args(p, args)
    data_root = default_data_root(__file__)

    from facezoo.data.datasets import DATASETS
    from facezoo.train.runner import build_config, run_dmtl, set_threads
    set_threads(args.threads)
    try:
        build_config(cfg.datasets, head_weights=cfg.head_weights)  # names every data set and head
    except ValueError as e:
        p.error(str(e))
    for n in cfg.datasets:
        d = cfg.data_dirs.get(n, DATASETS[n].data_dir(data_root))
        if not os.path.isdir(d):
            p.error(f"data set {n}: {d} is not a directory (give --data-dir {n}=DIR)")
    result = run_dmtl(cfg, data_root=data_root)
    for n, s in result.get("summary", {}).items():
        print(n, {k: round(v, 4) for k, v in s.items() if "mean" in k or "mae" in k or k in
                  ("gender_accuracy", "race_accuracy")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
