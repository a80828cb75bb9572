"""Adience age group (8 ordered groups) and gender, 5-fold cross-validated on the official folds.

The Adience report's setting: a ResNet-18 trunk with leaky ReLU under DMTL heads (CORAL age-group
head, softmax gender head, self-evaluation), GridMask whose probability rises from 0.6 to 0.8
over training (when ``facezoo.data.augment`` provides ``grid_mask``) on top of the default
flip/affine/colour augmentation, and step decay x0.1 at epochs 20, 50 and 75 of 100 — scaled
to ``--epochs`` (20 %, 50 %, 75 %). Fold ``k`` is held out while the model trains on the other
four; the report is mean ± std over the held-out folds of the final weights (the held-out fold
never picks an epoch). Resumable: run the same command again after an interruption.

Writes into ``--out``: ``records/`` (TFRecords at the input size), ``fold_<k>/`` (a training run
per fold: checkpoints, ``history.csv``, ``last.keras``, ``eval.json``, ``metrics.json``),
``crossval.json`` and ``crossval.md``.

Examples:
    python recipes/train_age_adience.py --data-dir ../shared/data/adience --out runs/adience
    python recipes/train_age_adience.py --folds 0 --epochs 2 --max-steps-per-epoch 5 --out runs/try
"""
import argparse
import os
import sys

from facezoo.train.recipe_args import add_training_arguments, default_data_root

GRID_MASK = {"probability": 0.6, "final_probability": 0.8, "d_range": (96, 224), "keep_ratio": 0.6,
             "reference_size": 224}
DECAY_AT = (0.2, 0.5, 0.75)  # epochs 20/50/75 of the report's 100


def parse_folds(text):
    try:
        folds = sorted({int(k) for k in text.split(",")})
    except ValueError:
        folds = []
    if not folds or min(folds) < 0 or max(folds) > 4:
        raise argparse.ArgumentTypeError(f"expected fold indices 0-4 separated by commas, got {text!r}")
    return folds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_arguments(p, data_dir=os.path.join(default_data_root(__file__), "adience"), epochs=100, batch_size=64,
                           input_size="112", width=0.5, out="runs/adience")
    p.add_argument("--folds", type=parse_folds, default=[0, 1, 2, 3, 4],
                   help="folds to hold out in turn, e.g. 0,1 (default 0,1,2,3,4); each trains on all the others")
    p.add_argument("--no-grid-mask", action="store_true", help="train without GridMask")
    args = p.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir} is not a directory (it needs fold_<k>_data.txt and faces/ or aligned/)")

    from facezoo.attributes import ADIENCE
    from facezoo.data import augment as augment_lib
    from facezoo.data.adience import AdienceReader
    from facezoo.models.dmtl import DmtlConfig, HeadSpec
    from facezoo.train.crossval import run_dmtl_crossval
    from facezoo.train.config import TrainConfig
    from facezoo.train.runner import set_threads

    set_threads(args.threads)
    reader = AdienceReader(args.data_dir)
    records = list(reader.records())
    print(f"adience: {len(records)} faces in folds {sorted({r.split for r in records})}; "
          f"{len(reader.problems)} rows or labels skipped", flush=True)
    config = DmtlConfig(backbone="resnet18", input_size=args.input_size, width=args.width, activation="leaky_relu",
                        datasets={"adience": [HeadSpec(ADIENCE["age_group"], tolerance=1),
                                              HeadSpec(ADIENCE["gender"])]})
    augment, on_epoch_begin = dict(augment_lib.DEFAULT_AUGMENT), None
    if not args.no_grid_mask:
        # The ramp is counted in epochs here (set_step(epoch)): 0.6 in the first epoch, 0.8 in the last.
        augment["grid_mask"] = {**GRID_MASK, "schedule_steps": max(1, args.epochs - 1)}
        augment = augment_lib.make_augment(augment)

        def on_epoch_begin(epoch, step):
            augment.set_step(epoch)
    train_config = TrainConfig(
        epochs=args.epochs, learning_rate=args.lr, weight_decay=args.weight_decay, schedule="step",
        schedule_kwargs={"boundaries": tuple(max(1, round(f * args.epochs)) for f in DECAY_AT)},
        monitor="adience/mean_accuracy", seed=args.seed)
    run_dmtl_crossval(records, ADIENCE, config, train_config, args.out, batch_size=args.batch_size,
                      folds=[f"fold_{k}" for k in args.folds], augment=augment,
                      max_steps_per_epoch=args.max_steps_per_epoch, on_epoch_begin=on_epoch_begin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
