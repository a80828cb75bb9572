"""Train SRGAN (×4 face super-resolution, 16×16 -> 64×64 by default) on the staged CelebA faces.

Two runs, as in the paper: pixel-loss pre-training of the SRResNet generator (--pretrain-epochs, into
OUT/pretrain; best.keras is the epoch with the best validation PSNR), then adversarial training
started from that generator (--epochs, into OUT/adversarial). Low-resolution inputs are made from
the high-resolution faces by bicubic downscaling. Each run checkpoints every epoch and resumes:
run the same command again after an interruption. Every epoch a grid of validation faces is written
to OUT/<phase>/samples/epoch-NNN.png: rows of bicubic upsampling, super-resolution, original.

Content loss: the pixel loss (--pixel-loss) unless --feature-extractor names a ``.keras`` model
(images in [-1, 1] -> features), whose feature MSE then replaces it in the adversarial run (the
paper's perceptual loss used ImageNet VGG features, which cannot be downloaded here).

Examples:
    python recipes/train_srgan.py --pretrain-epochs 10 --epochs 10 --out runs/srgan
    python recipes/train_srgan.py --hr-size 96 --out runs/srgan96                # 24×24 -> 96×96
    python recipes/train_srgan.py --pretrain-epochs 1 --epochs 1 --max-steps-per-epoch 5 --out /tmp/srgan-smoke
"""
import argparse
import os
import sys

from facezoo.train.recipe_args import default_data_root


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.path.join(default_data_root(__file__), "celeba")
    p.add_argument("--data-dir", default=default_data, help=f"CelebA root (default {default_data})")
    p.add_argument("--pretrain-epochs", type=int, default=10, help="pixel-loss epochs (0: skip pre-training)")
    p.add_argument("--epochs", type=int, default=10, help="adversarial epochs (0: pre-train only)")
    p.add_argument("--batch-size", type=int, default=16, help="global batch size")
    p.add_argument("--hr-size", type=int, default=64, help="high-resolution side (default 64; 96 for 24 -> 96)")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor, a power of two (default 4)")
    p.add_argument("--filters", type=int, default=32, help="SRResNet trunk channels (paper 64; default 32)")
    p.add_argument("--blocks", type=int, default=8, help="SRResNet residual blocks (paper 16; default 8)")
    p.add_argument("--discriminator-filters", type=int, default=32, help="discriminator first-stage channels")
    p.add_argument("--discriminator-units", type=int, default=256, help="discriminator dense layer width")
    p.add_argument("--pixel-loss", choices=("l1", "mse"), default="l1")
    p.add_argument("--adversarial-weight", type=float, default=1e-3)
    p.add_argument("--feature-extractor", default=None, metavar="MODEL.keras|trunk:MODEL[:LAYER]",
                   help="features for the perceptual content loss of the adversarial run: a .keras model, or "
                        "trunk:dmtl_celeba[:conv3_block2_out] for a layer of a shipped model's trunk "
                        "(default: pixel loss)")
    p.add_argument("--init", default=None, metavar="MODEL.keras",
                   help="generator to start the adversarial phase from when --pretrain-epochs is 0: an SRGAN "
                        ".keras (a pre-training run's best.keras) or a shipped generator "
                        "(exported/srgan_face_x4/model.keras)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="one-sided label smoothing of D")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default 1e-4)")
    p.add_argument("--adversarial-lr", type=float, default=None,
                   help="learning rate of the adversarial run (default: --lr); pre-training tolerates a larger one")
    p.add_argument("--val-percent", type=int, default=10, help="identities held out for validation")
    p.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap steps per epoch (smoke tests)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/srgan", help="run folder (default runs/srgan)")
    args = p.parse_args(argv)
    if args.scale < 2 or args.scale & (args.scale - 1):
        p.error(f"--scale must be a power of two >= 2, got {args.scale}")
    if args.hr_size % args.scale or args.hr_size < 16:
        p.error(f"--hr-size must be >= 16 and divisible by --scale {args.scale}, got {args.hr_size}")
    if (args.feature_extractor and not args.feature_extractor.startswith("trunk:")
            and not os.path.exists(args.feature_extractor)):
        p.error(f"--feature-extractor {args.feature_extractor} does not exist")
    if not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir} is not a directory")
    if args.init and not os.path.isfile(args.init):
        p.error(f"--init {args.init}: no such file")
    if args.init and args.pretrain_epochs:
        p.error("--init starts the adversarial phase: give it with --pretrain-epochs 0")
    if args.pretrain_epochs == 0 and args.epochs == 0:
        p.error("nothing to do: --pretrain-epochs and --epochs are both 0")

    from facezoo.models.gan.perceptual import parse_extractor
    from facezoo.tasks.gan import SrganTask
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    from facezoo.train.runner import prepare_face_run
    from facezoo.train.strategy import is_chief

    strategy, train, val, steps = prepare_face_run(args, args.hr_size)
    model_config = {"scale": args.scale, "hr_size": args.hr_size, "generator_filters": args.filters,
                    "num_blocks": args.blocks, "discriminator_filters": args.discriminator_filters,
                    "discriminator_units": args.discriminator_units, "pixel_loss": args.pixel_loss,
                    "adversarial_weight": args.adversarial_weight, "label_smoothing": args.label_smoothing}
    pretrained = os.path.join(args.out, "pretrain", "best.keras")
    adversarial_lr = args.lr if args.adversarial_lr is None else args.adversarial_lr
    runs = [("pretrain", args.pretrain_epochs, None, None, args.lr),
            ("adversarial", args.epochs, pretrained if args.pretrain_epochs else args.init,
             parse_extractor(args.feature_extractor) if args.feature_extractor else None, adversarial_lr)]
    for phase, epochs, init, extractor, lr in runs:
        if not epochs:
            continue
        out = os.path.join(args.out, phase)
        task = SrganTask(model_config, phase=phase, init=init, feature_extractor=extractor,
                         samples_dir=os.path.join(out, "samples"), steps_per_epoch=steps)
        config = TrainConfig(epochs=epochs, steps_per_epoch=steps, learning_rate=lr,
                             reference_batch=args.batch_size, weight_decay=0.0, schedule="constant",
                             seed=args.seed)
        trainer = Trainer(task, train, config, out, global_batch=args.batch_size, strategy=strategy,
                          val_data={"celeba": val})
        history = trainer.fit(verbose=True)
        if is_chief() and history:
            last = history[-1]
            print(f"{phase}: {len(history)} epochs; validation PSNR {last['val_psnr']:.2f} dB "
                  f"(bicubic {last['val_bicubic_psnr']:.2f} dB); samples in {os.path.join(out, 'samples')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
