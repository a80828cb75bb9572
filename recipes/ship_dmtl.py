"""Package a trained DMTL run as a shipped model: ``exported/<name>/`` with model, card and plots.

Steps: re-save the run's ``best.keras`` into ``exported/<name>/model.keras`` (verified to load with
``safe_mode=True``), write the card (architecture, FLOPs, input spec, label space, data, split rule,
licence, sha256), then run the evaluator (``facezoo evaluate <name> --data-dir ...``) on the
validation split and record its summary, the exact command and the plots on the card.

A run trained on several data sets through one trunk (``--dataset celeba+utkface``) ships one
model per data set: the trunk plus that data set's branch, copied weight for weight (the shipped
model's outputs equal the joint model's outputs for that data set). A run warm-started with
``--init`` records the whole chain of training commands on the card, and the licences of every
data set any stage was trained on.

Examples:
    python recipes/ship_dmtl.py --run runs/dmtl_celeba --name dmtl_celeba --dataset celeba
    python recipes/ship_dmtl.py --run runs/dmtl_joint --name dmtl_utkface --dataset utkface
"""
import argparse
import json
import os
import shutil
import sys

LICENSES = {
    "celeba": ("CelebA (Liu et al., ICCV 2015, MMLAB CUHK): NON-COMMERCIAL RESEARCH USE ONLY. The CelebA "
               "agreement forbids commercial use; these weights are derived from CelebA images and inherit "
               "that restriction. Do not use them commercially."),
    "utkface": ("UTKFace (Zhang, Song, Qi, CVPR 2017): NON-COMMERCIAL RESEARCH PURPOSES ONLY; image copyright "
                "stays with the owners. These weights are derived from UTKFace images and inherit that "
                "restriction. Do not use them commercially."),
}
DESCRIPTIONS = {
    "celeba": "DMTL (shared ResNet-18 trunk, holistic/local category branches, one head per attribute, "
              "self-evaluation heads) predicting CelebA's 40 binary face attributes from an aligned face crop.",
    "utkface": "DMTL (shared ResNet-18 trunk, holistic nominal + ordinal branches, self-evaluation heads): "
               "apparent age (CORAL ordinal head over 0-100 years, decoded to the expected value), gender "
               "and race (UTKFace's 5 groups) from a face crop.",
}
HEADLINES = {"celeba": "mean_accuracy", "utkface": "age_mae"}
SOURCES = {"celeba": "celeba/SOURCE.md (8,063 aligned 89x109 images, 4,369 identities)",
           "utkface": "utkface/SOURCE.md (11,000 aligned & cropped 200x200 images)"}


def run_chain(run_dir: str) -> list[dict]:
    """The run's ``run.json`` preceded by those of the runs it was warm-started from (oldest first)."""
    chain, seen = [], set()
    while run_dir and os.path.realpath(run_dir) not in seen:
        seen.add(os.path.realpath(run_dir))
        with open(os.path.join(run_dir, "run.json")) as f:
            run = json.load(f)
        chain.insert(0, run)
        run_dir = os.path.dirname(run["init"]) if run.get("init") else None
    return chain


def train_command(run: dict) -> str:
    """The recipe command line that reproduces one run (paths relative to the repository)."""
    out = f"runs/{os.path.basename(os.path.normpath(run['out']))}"
    cmd = (f"python recipes/train_dmtl.py --dataset {'+'.join(run['names'])} --epochs {run['epochs']} "
           f"--input-size {run['input_size'][0]}x{run['input_size'][1]} --width {run['width']} "
           f"--batch-size {run['batch_size']} --lr {run['learning_rate']} "
           f"--weight-decay {run['weight_decay']} --seed {run['seed']}")
    for head, weight in sorted((run.get("head_weights") or {}).items()):
        cmd += f" --head-weight {head}={weight:g}"
    if run.get("init"):
        init = run["init"]
        cmd += f" --init runs/{os.path.basename(os.path.dirname(init))}/{os.path.basename(init)}"
    return cmd + f" --out {out}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run folder of recipes/train_dmtl.py")
    p.add_argument("--name", required=True, help="registry name, e.g. dmtl_celeba")
    p.add_argument("--dataset", required=True, choices=sorted(LICENSES))
    p.add_argument("--data-dir", help="data set root for the evaluation (default: ../shared/data/<dataset>)")
    p.add_argument("--bn-recalibrate", action="store_true",
                   help="re-estimate BatchNorm statistics on this data set's training images (AdaBN; for a "
                        "branch of a joint run, whose statistics average every data set)")
    p.add_argument("--note", default="",
                   help="a sentence appended to the card's notes (e.g. how this run was chosen among others)")
    p.add_argument("--exported", default=os.path.join(os.path.dirname(__file__), "..", "exported"))
    args = p.parse_args(argv)

    from facezoo import zoo
    from facezoo.evaluate import SPLIT_SALT, evaluate
    from facezoo.models.flops import count_macs
    from facezoo.preprocess import PREPROCESSING
    from facezoo.train.experiment import DATASETS, DEFAULT_DATA_ROOT

    from facezoo.models.backbone import transfer_weights
    from facezoo.models.dmtl import dmtl, select_dataset

    chain = run_chain(args.run)
    run = chain[-1]
    trained_on = sorted({n for r in chain for n in r["names"]})
    with open(os.path.join(args.run, "eval.json")) as f:
        best_epoch = json.load(f).get("best_epoch")
    best = os.path.join(args.run, "best.keras")
    model = zoo.load_keras(best)
    if [d.name for d in model.dmtl_config.datasets] != [args.dataset]:
        # One data set's branch of a joint model: the trunk and that branch, weight for weight.
        single = dmtl(select_dataset(model.dmtl_config, [args.dataset]))
        transfer_weights(model, single, require_all=True)
        best = os.path.join(args.run, f"{args.name}.keras")
        single.save(best)
        model = single
    cfg = model.dmtl_config
    data_dir = args.data_dir or os.path.join(DEFAULT_DATA_ROOT, args.dataset)
    recalibrated = ""
    if args.bn_recalibrate:
        from facezoo.data.pipeline import pipeline
        from facezoo.data.tfrecord import read_manifest
        from facezoo.train.batchnorm import recalibrate_batchnorm
        from facezoo.train.experiment import prepare
        records = prepare(args.dataset, data_dir, os.path.join(args.run, "records"), run["input_size"],
                          run["val_percent"])
        manifest = read_manifest(records)
        # Full batches of 64 (fewer only when the split itself is smaller), so every batch weighs the same.
        bn_batch = max(1, min(64, manifest["splits"]["train"]["count"]))
        train = pipeline(manifest, "train", image_size=tuple(cfg.input_size), batch_size=bn_batch,
                         training=True, augment=None, shuffle_buffer=100_000, seed=0, deterministic=True)
        n = recalibrate_batchnorm(model, train)
        best = os.path.join(args.run, f"{args.name}.keras")
        model.save(best)
        recalibrated = (f" BatchNorm statistics re-estimated on {n} batches of {bn_batch} {args.dataset} training images "
                        f"(no augmentation; facezoo.train.batchnorm.recalibrate_batchnorm), never on validation "
                        f"images. Whether to ship re-estimated statistics was decided by measuring the model both "
                        f"ways on the validation split.")
    rel_data = os.path.relpath(data_dir, os.path.join(os.path.dirname(__file__), ".."))
    description = DESCRIPTIONS[args.dataset]
    if trained_on != [args.dataset]:
        description += (f" The trunk was trained on {' and '.join(trained_on)} (one branch per data set, thesis "
                        f"§3.4); this model is that trunk with the {args.dataset} branch.")
    train_cmd = " && ".join(train_command(r) for r in chain)
    if len(run["names"]) > 1 or args.bn_recalibrate:  # shipping itself changes the weights
        train_cmd += (f" && python recipes/ship_dmtl.py --run runs/{os.path.basename(os.path.normpath(args.run))}"
                      f" --name {args.name} --dataset {args.dataset}" + (" --bn-recalibrate" if args.bn_recalibrate else ""))
    eval_cmd = f"facezoo evaluate {args.name} --data-dir {rel_data}"
    card = zoo.ModelCard(
        name=args.name, task=f"face attributes ({args.dataset})", description=description,
        architecture={"family": "DMTL", "backbone": cfg.backbone, "width": cfg.width,
                      "params": int(model.count_params()), "flops": 2 * count_macs(model),
                      "config": cfg.to_dict()},
        input_size=list(cfg.input_size), preprocessing=PREPROCESSING,
        label_spaces=[DATASETS[args.dataset].label_space.to_dict()],
        training_data={"dataset": args.dataset, "source": SOURCES[args.dataset],
                       "trained_on": {n: SOURCES[n] for n in trained_on},
                       "stages": [{"datasets": r["names"], "epochs": r["epochs"], "input_size": r["input_size"],
                                   "learning_rate": r["learning_rate"], "init": bool(r.get("init"))}
                                  for r in chain],
                       "val_percent": run["val_percent"], "split_salt": SPLIT_SALT,
                       "epochs": run["epochs"], "best_epoch": best_epoch,
                       "selection": "best epoch of the last stage by the validation score (mean over the "
                                    "data sets trained on); choices between runs, if any, are in the notes"},
        split="; ".join(f"{n}: {DATASETS[n].split_rule}" for n in trained_on),
        license=" ".join(LICENSES[n] for n in trained_on),
        train_command=train_cmd, evaluate_command=eval_cmd, headline=HEADLINES[args.dataset],
        abstain_below=0.5,
        notes="Decision threshold 0.5 for every binary attribute (not tuned). A head abstains when its "
              "self-evaluation confidence is below abstain_below." + recalibrated
              + (" " + args.note.strip() if args.note.strip() else ""))
    out = os.path.join(args.exported, args.name)
    extra = [os.path.join(args.run, "curves.png")]
    card = zoo.package_model(best, out, card, extra_files=extra)

    eval_dir = os.path.join(args.run, "evaluation", args.name)
    report = evaluate(args.name, data_dir, dataset=args.dataset, out=eval_dir, max_misclassified=0,
                      directory=out)
    card.metrics = {"val": {args.dataset: report["summary"]}}
    card.notes += (f" Measured by `{eval_cmd}` on {report['n_images']} validation images; "
                   f"batch-1 latency {report['batch1_latency_ms']} ms (tf.function, 2-core CPU).")
    for png in ("per_attribute.png", "confusion_gender.png", "confusion_race.png"):
        if os.path.exists(os.path.join(eval_dir, png)):
            shutil.copyfile(os.path.join(eval_dir, png), os.path.join(out, png))
    card.to_json(os.path.join(out, zoo.CARD_FILE))
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
