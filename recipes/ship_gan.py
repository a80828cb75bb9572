"""Package a trained generator as a shipped model: ``exported/<name>/`` with the generator, card and samples.

Reads a run folder of ``recipes/train_gan.py`` (DCGAN: ``last.keras``; card task ``generation``) or of
``recipes/train_srgan.py`` (``adversarial/last.keras``, else ``pretrain/best.keras``; task
``super_resolution``), re-saves the generator network alone (verified to load with ``safe_mode=True``),
writes the card (architecture, conditions and how often each is on in the training faces, data, split
rule, licence, the exact training command), then runs the evaluator (what ``facezoo evaluate NAME
--data-dir ...`` runs: FD-facezoo with its real-vs-real floor and attribute hit rates, or PSNR / SSIM
against bicubic) on the validation split and records its numbers, the command and ``samples.png``.

Examples:
    python recipes/ship_gan.py --run runs/dcgan --name dcgan_face64
    python recipes/ship_gan.py --run runs/srgan --name srgan_face_x4
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

from facezoo.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Run arguments that do not change the result (or are replaced: the run folder becomes runs/<name>).
NOT_IN_COMMAND = {"replicas", "threads", "out", "data_dir"}


def run_kind(run_dir: str) -> tuple[str, dict]:
    """``("dcgan" | "srgan", run.json)`` of a GAN run folder; ``UsageError`` naming the problem otherwise."""
    path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(path):
        raise UsageError(f"{path} does not exist: --run must be a folder written by recipes/train_gan.py "
                         "or recipes/train_srgan.py")
    with open(path) as f:
        run = json.load(f)
    if "latent_dim" in run:
        return "dcgan", run
    if "hr_size" in run:
        return "srgan", run
    raise UsageError(f"{path} is not from recipes/train_gan.py or recipes/train_srgan.py")


def train_command(kind: str, run: dict, run_name: str) -> str:
    """The command that reproduces the run, from its ``run.json`` (every option it was given)."""
    script = "train_gan.py" if kind == "dcgan" else "train_srgan.py"
    parts = [f"python recipes/{script}"]
    for key, value in run.items():
        if key in NOT_IN_COMMAND or value is None:
            continue
        if isinstance(value, (list, tuple)):
            if not value:
                continue
            value = ",".join(map(str, value))
        parts.append(f"--{key.replace('_', '-')} {value}")
    data = os.path.relpath(os.path.abspath(run["data_dir"]), REPO) if run.get("data_dir") else None
    if data:
        parts.append(f"--data-dir {data}")
    parts.append(f"--out runs/{run_name}")
    return " ".join(parts)


def trained_weights(kind: str, run_dir: str, phase: str | None = None) -> tuple[str, dict]:
    """The ``.keras`` file to ship and the ``state.json`` history of the run that wrote it (SRGAN: the
    adversarial run's last model, else the pre-training's best; ``phase`` chooses one)."""
    if kind == "dcgan":
        folders = [run_dir]
        names = ["last.keras"]
    else:
        choices = {"adversarial": (os.path.join(run_dir, "adversarial"), "last.keras"),
                   "pretrain": (os.path.join(run_dir, "pretrain"), "best.keras")}
        picked = [choices[phase]] if phase else list(choices.values())
        folders, names = [f for f, _ in picked], [n for _, n in picked]
    for folder, name in zip(folders, names):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(os.path.join(folder, "state.json")) as f:
                return path, json.load(f)
    raise UsageError(f"no trained model in {run_dir} (looked for "
                     f"{', '.join(os.path.join(f, n) for f, n in zip(folders, names))})")


def init_chain(run: dict) -> str:
    """The training command of the shipped model a run started from (``--init exported/<name>/model.keras``),
    read from that model's card, followed by `` && ``; empty when the run did not start from a shipped model."""
    init = run.get("init")
    if not init:
        return ""
    card = os.path.join(os.path.dirname(os.path.abspath(init)), "card.json")
    if not os.path.isfile(card):
        return ""
    with open(card) as f:
        previous = json.load(f).get("train_command")
    return f"{previous} && " if previous else ""


def condition_priors(data_dir: str, val_percent: int, conditions) -> dict:
    """How often each condition is on among the training faces of the run's split."""
    from facezoo.evaluation.report import evaluation_records
    records = evaluation_records("celeba", data_dir, "train", val_percent)
    return {c: round(sum(r.labels.get(c, 0) for r in records) / len(records), 4) for c in conditions}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run folder of recipes/train_gan.py or recipes/train_srgan.py")
    p.add_argument("--name", help="registry name (default dcgan_face64 / srgan_face_x4)")
    p.add_argument("--data-dir", help="CelebA root for the evaluation (default: the run's)")
    p.add_argument("--phase", choices=("pretrain", "adversarial"), default=None,
                   help="SRGAN: ship this phase's generator (default: adversarial if trained, else pretrain)")
    p.add_argument("--eval-images", type=int, default=None, help="validation faces evaluated (default all)")
    p.add_argument("--hit-rate-images", type=int, default=200,
                   help="conditional generators: faces generated per attribute and setting (default 200)")
    p.add_argument("--note", default="", help="a sentence appended to the card's notes")
    p.add_argument("--exported", default=os.path.join(REPO, "exported"), help="folder of shipped models")
    args = p.parse_args(argv)

    try:
        kind, run = run_kind(args.run)
        if args.phase and kind != "srgan":
            raise UsageError("--phase applies to SRGAN runs only")
        weights, state = trained_weights(kind, args.run, args.phase)
    except UsageError as e:
        p.error(f"--run: {e}")
    name = args.name or ("dcgan_face64" if kind == "dcgan" else "srgan_face_x4")
    data_dir = args.data_dir or run.get("data_dir")
    if not data_dir or not os.path.isdir(data_dir):
        p.error(f"--data-dir {data_dir}: not a directory (the CelebA root the run's validation split comes from)")

    from facezoo.attributes import CELEBA_40, LabelSpace
    from facezoo.data.datasets import DATASETS
    from facezoo.data.splits import SPLIT_SALT
    from facezoo.evaluation import generation
    from facezoo.models.flops import count_macs
    from facezoo.models.weights import load_keras
    from facezoo.preprocessing import PreprocessSpec
    from facezoo.zoo.card import ModelCard
    from facezoo.zoo.package import finalize_files, package_model

    chain = init_chain(run)  # read before a re-ship overwrites the card it comes from
    gan = load_keras(weights)
    history = state.get("history", [])
    celeba = DATASETS["celeba"]
    val_percent = run["val_percent"]
    rel_data = os.path.relpath(os.path.abspath(data_dir), REPO)
    steps = history[-1]["step"] if history else 0
    training = {"dataset": "celeba", "source": celeba.source, "val_percent": val_percent, "split_salt": SPLIT_SALT,
                "epochs": len(history), "steps": steps, "batch_size": run["batch_size"],
                "weights": os.path.relpath(weights, args.run), "last_epoch": history[-1] if history else None}
    if run.get("init"):
        training["init"] = run["init"]
    if kind == "dcgan":
        conditions = list(gan.conditions)
        arch = {"family": "DCGAN", "latent_dim": gan.latent_dim, "image_size": gan.image_size,
                "generator_filters": gan.generator_filters, "conditions": conditions,
                "condition_priors": condition_priors(data_dir, val_percent, conditions) if conditions else {},
                "params": int(gan.generator.count_params())}
        task, headline, size = "generation", "fd_facezoo", (gan.image_size, gan.image_size)
        label_spaces = [LabelSpace("celeba", tuple(CELEBA_40[c] for c in conditions)).to_dict()] if conditions else []
        description = (f"DCGAN generator: {gan.latent_dim}-d standard-normal noise"
                       + (f" and 0/1 conditions {', '.join(conditions)}" if conditions else "")
                       + f" -> a {gan.image_size}x{gan.image_size} RGB face (CelebA's aligned faces, centre square).")
    else:
        arch = {"family": "SRResNet (SRGAN generator)", "scale": gan.scale, "hr_size": gan.hr_size,
                "lr_size": gan.lr_size, "filters": gan.generator_filters, "num_blocks": gan.num_blocks,
                "phase": gan.phase, "content_loss": "feature" if gan.feature_extractor is not None else gan.pixel_loss,
                "params": int(gan.generator.count_params())}
        task, headline, size = "super_resolution", "psnr_gain_db", (gan.lr_size, gan.lr_size)
        label_spaces = []
        how = ("with the adversarial loss after pixel-loss pre-training" if gan.phase == "adversarial"
               else "on the pixel loss alone (SRResNet)")
        description = (f"SRResNet generator (x{gan.scale} face super-resolution, {gan.lr_size}x{gan.lr_size} -> "
                       f"{gan.hr_size}x{gan.hr_size} in training; fully convolutional: any input size), trained {how}.")
    try:
        arch["flops"] = 2 * count_macs(gan.generator)
    except Exception:  # noqa: BLE001 - FLOPs are informative only
        pass
    eval_cmd = f"facezoo evaluate {name} --data-dir {rel_data}"
    card = ModelCard(
        name=name, task=task, description=description, architecture=arch,
        preprocessing=PreprocessSpec(size).to_dict(), label_spaces=label_spaces, training_data=training,
        split=f"celeba: {celeba.split_rule(val_percent)}",
        license=celeba.license + (" Generated and restored images are derived from CelebA as well: keep them "
                                  "to non-commercial research and do not present them as real people."),
        train_command=(chain + train_command(kind, run, name)
                       + f" && python recipes/ship_gan.py --run runs/{name} --name {name}"
                       + (f" --phase {args.phase}" if args.phase else "")),
        evaluate_command=eval_cmd, headline=headline,
        notes=("Metrics by the evaluator (facezoo.evaluation.generation): "
               + ("FD-facezoo is a Frechet distance in dmtl_celeba's pooled trunk features (256-d), NOT comparable "
                  "with Inception FID; fd_real_floor is the same distance between two disjoint halves of the "
                  "validation faces (its floor at this sample size)."
                  if kind == "dcgan" else
                  "PSNR / SSIM on RGB 8-bit images at the training resolution, low-resolution input made by "
                  "antialiased bicubic downscaling; bicubic upsampling of the same input is the baseline.")
               + (" " + args.note.strip() if args.note.strip() else "")))

    out = os.path.join(args.exported, name)
    with tempfile.TemporaryDirectory() as tmp:
        generator_file = os.path.join(tmp, "generator.keras")
        gan.generator.save(generator_file)
        card = package_model(generator_file, out, card)
    eval_dir = os.path.join(args.run, "evaluation", name)
    if kind == "dcgan":
        report = generation.evaluate_generator(name, data_dir, out=eval_dir, n=args.eval_images, directory=out,
                                                 hit_rate_n=args.hit_rate_images)
    else:
        report = generation.evaluate_upscaler(name, data_dir, out=eval_dir, n=args.eval_images, directory=out)
    card.metrics = {"val": {"celeba": report["summary"]}}
    if "attributes" in report:
        card.metrics["val"]["attribute_hit_rates"] = report["attributes"]
    limit = f" --max-images {args.eval_images}" if args.eval_images else ""
    if kind == "dcgan" and gan.conditions and args.hit_rate_images != 200:
        limit += f" --hit-rate-images {args.hit_rate_images}"
    card.evaluate_command = eval_cmd + limit
    card.notes += f" Measured by `{card.evaluate_command}` on {report['n_images']} validation faces."
    shutil.copyfile(os.path.join(eval_dir, "samples.png"), os.path.join(out, "samples.png"))
    card = finalize_files(out, card)
    print(generation.format_table(report))
    print(f"\nshipped {name} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
