"""Train a DCGAN on 64×64 CelebA faces, optionally conditioned on attributes (Male, Smiling, ...).

Reads the staged CelebA faces (--data-dir), splits them by identity, converts them once to TFRecords
of the generated size (centre crop) and trains through facezoo's loop (any tf.distribute strategy the
machine offers). Every epoch it writes a sample grid from fixed noise (conditional: one row per
condition — none, each attribute alone, all), a checkpoint and a history row. Resumable: run the
same command again after an interruption and it continues from the last checkpoint.

Writes into --out: records/ (TFRecords), ckpt/, samples/epoch-NNN.png, last.keras (a facezoo DCGAN:
``facezoo.models.weights.load_keras(path).generate(noise)``), history.csv, state.json, run.json.

Examples:
    python recipes/train_gan.py --epochs 25 --out runs/dcgan
    python recipes/train_gan.py --conditions Male,Smiling,Eyeglasses,Young --out runs/cdcgan
    python recipes/train_gan.py --epochs 1 --max-steps-per-epoch 5 --out /tmp/gan-smoke
"""
import argparse
import os
import sys

from facezoo.attributes import CELEBA_NAMES
from facezoo.train.recipe_args import default_data_root


def parse_conditions(text: str) -> tuple:
    """``"Male,Smiling"`` -> ``("Male", "Smiling")``, each a CelebA attribute; ``""`` -> ``()``."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CELEBA_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(f"not CelebA attributes: {unknown}; choose from {', '.join(CELEBA_NAMES)}")
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.path.join(default_data_root(__file__), "celeba")
    p.add_argument("--data-dir", default=default_data, help=f"CelebA root (default {default_data})")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=64, help="global batch size")
    p.add_argument("--image-size", type=int, default=64, help="generated side, a power of two (default 64)")
    p.add_argument("--latent-dim", type=int, default=100)
    p.add_argument("--generator-filters", type=int, default=64, help="channels of the generator's last stage")
    p.add_argument("--discriminator-filters", type=int, default=64, help="channels of the discriminator's first stage")
    p.add_argument("--conditions", type=parse_conditions, default=(), metavar="A,B,...",
                   help="CelebA attributes to condition on, e.g. Male,Smiling,Eyeglasses,Young (default: none)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="one-sided: real targets 1 - this (default 0.1)")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of both networks (default 2e-4)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta_1 (default 0.5)")
    p.add_argument("--val-percent", type=int, default=10, help="identities held out for validation")
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap steps per epoch (smoke tests)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and the grid's noise")
    p.add_argument("--out", default="runs/dcgan", help="run folder (default runs/dcgan)")
    args = p.parse_args(argv)
    if args.image_size < 8 or args.image_size & (args.image_size - 1):
        p.error(f"--image-size must be a power of two >= 8, got {args.image_size}")
    if not 0 <= args.label_smoothing < 1:
        p.error(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir} is not a directory")

    from facezoo.tasks.gan import GanTask
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    from facezoo.train.runner import prepare_face_run
    from facezoo.train.strategy import is_chief

    strategy, train, val, steps = prepare_face_run(args, args.image_size)
    model_config = {"latent_dim": args.latent_dim, "image_size": args.image_size,
                    "generator_filters": args.generator_filters,
                    "discriminator_filters": args.discriminator_filters, "conditions": args.conditions,
                    "label_smoothing": args.label_smoothing}
    task = GanTask(model_config, beta_1=args.beta1, samples_dir=os.path.join(args.out, "samples"),
                   steps_per_epoch=steps, sample_seed=args.seed)
    config = TrainConfig(epochs=args.epochs, steps_per_epoch=steps, learning_rate=args.lr,
                         reference_batch=args.batch_size, weight_decay=0.0, schedule="constant", seed=args.seed)
    trainer = Trainer(task, train, config, args.out, global_batch=args.batch_size, strategy=strategy,
                      val_data={"celeba": val})
    history = trainer.fit(verbose=True)
    if is_chief() and history:
        print(f"{len(history)} epochs; last: " + ", ".join(f"{k} {history[-1][k]:.4f}" for k in
                                                         ("d_loss", "g_loss", "d_x", "d_g_z")))
        print(f"samples in {os.path.join(args.out, 'samples')}, model {os.path.join(args.out, 'last.keras')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
