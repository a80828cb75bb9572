"""Package a trained DMTL run as a shipped model: ``exported/<name>/`` with model, card and plots.

Steps: re-save the run's ``best.keras`` into ``exported/<name>/model.keras`` (verified to load with
``safe_mode=True``), write the card (architecture, FLOPs, input spec, label space, data, split rule,
licence, sha256), then run the evaluator (``facezoo evaluate <name> --data-dir ...``) on the
validation split and record its summary, the exact command and the plots on the card.

A run trained on several data sets through one trunk (``--dataset celeba+utkface``) ships one
model per data set: the trunk plus that data set's branch, copied weight for weight (the shipped
model's outputs equal the joint model's outputs for that data set). A run warm-started with
``--init`` records the whole chain of training commands on the card, and the licences of every
data set any stage was trained on; a warm start from a shipped model (``--init exported/<name>/model.keras``)
continues that model's card: its commands, stages, trunk and licences come first.

Examples:
    python recipes/ship_dmtl.py --run runs/dmtl_celeba --name dmtl_celeba --dataset celeba
    python recipes/ship_dmtl.py --run runs/dmtl_joint --name dmtl_utkface --dataset utkface
"""
import argparse
import json
import os
import shutil
import sys

def run_chain(run_dir: str) -> list[dict]:
    """The run's ``run.json`` preceded by those of the runs it was warm-started from (oldest first)."""
    from facezoo.zoo.package import shipped_card
    chain, seen = [], set()
    while run_dir and os.path.realpath(run_dir) not in seen:
        seen.add(os.path.realpath(run_dir))
        card = shipped_card(run_dir)
        if card is not None:  # warm-started from a shipped model (exported/<name>/model.keras): the chain before
            chain.insert(0, {"kind": "shipped", "card": card})
            break
        with open(os.path.join(run_dir, "run.json")) as f:
            run = json.load(f)
        if run.get("kind") == "distill_trunk":  # a face trunk (recipes/distill_trunk.py) started the chain
            chain.insert(0, run)
            break
        if "config" not in run:
            raise SystemExit(f"{run_dir}/run.json has no config: the run was made by an older facezoo; "
                             "train it again with recipes/train_dmtl.py")
        chain.insert(0, run)
        init = run["config"].get("init")
        run_dir = os.path.dirname(init) if init else None
    return chain


def train_command(run: dict) -> str:
    """The command that reproduces one run, from the ``RecipeConfig`` it saved in ``run.json`` (run folders
    as ``runs/<name>``, data from the default data root)."""
    from facezoo.train.config import RecipeConfig
    if run.get("kind") == "distill_trunk":
        return run["command"]
    if run.get("kind") == "shipped":  # every command that made the shipped model, its own ship step included
        return run["card"]["train_command"]
    return RecipeConfig.from_dict(run["config"]).portable().command()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="run folder of recipes/train_dmtl.py")
    p.add_argument("--name", required=True, help="registry name, e.g. dmtl_celeba")
    p.add_argument("--dataset", required=True, help="the data set whose branch ships (celeba, utkface, ...)")
    p.add_argument("--data-dir", help="data set root for the evaluation (default: ../shared/data/<dataset>)")
    p.add_argument("--bn-recalibrate", action="store_true",
                   help="re-estimate BatchNorm statistics on this data set's training images (AdaBN; for a "
                        "branch of a joint run, whose statistics average every data set)")
    p.add_argument("--float16-storage", action="store_true",
                   help="store the weights rounded to float16 in a deflated archive (about 55%% of the size; the "
                        "model still computes in float32, and the evaluator measures the stored file)")
    p.add_argument("--note", default="",
                   help="a sentence appended to the card's notes (e.g. how this run was chosen among others)")
    p.add_argument("--exported", default=os.path.join(os.path.dirname(__file__), "..", "exported"))
    args = p.parse_args(argv)

    from facezoo.data.datasets import DATASETS
    from facezoo.errors import UsageError
    if args.dataset not in DATASETS:
        p.error(f"--dataset {args.dataset!r}: choose from {sorted(DATASETS)}")
    from facezoo.zoo.card import ModelCard
    from facezoo.data.splits import SPLIT_SALT
    from facezoo.evaluation.plots import plot_history
    from facezoo.evaluation.report import evaluate
    from facezoo.models.dmtl import dmtl, select_dataset
    from facezoo.models.flops import count_macs
    from facezoo.models.weights import load_keras, transfer_weights
    from facezoo.preprocessing import PreprocessSpec
    from facezoo.train.recipe_args import default_data_root
    from facezoo.zoo.package import finalize_files, package_model

    chain = run_chain(args.run)
    trunk_runs = [r for r in chain if r.get("kind") == "distill_trunk"]
    shipped = [r["card"] for r in chain if r.get("kind") == "shipped"]  # the model this chain continued
    prior = chain[:1] if shipped else trunk_runs
    chain = [r for r in chain if r.get("kind") not in ("distill_trunk", "shipped")]
    run = chain[-1]["config"]
    earlier = shipped[0]["training_data"] if shipped else {}
    trained_on = sorted({n for r in chain for n in r["config"]["datasets"]} | set(earlier.get("trained_on", ())))
    trunk_info = [{k: r[k] for k in ("teacher", "init", "data", "command")} for r in trunk_runs] + list(
        earlier.get("pretrained_trunk", ()))
    with open(os.path.join(args.run, "eval.json")) as f:
        best_epoch = json.load(f).get("best_epoch")
    best = os.path.join(args.run, "best.keras")
    model = load_keras(best)
    if [d.name for d in model.dmtl_config.datasets] != [args.dataset]:
        # One data set's branch of a joint model: the trunk and that branch, weight for weight.
        single = dmtl(select_dataset(model.dmtl_config, [args.dataset]))
        transfer_weights(model, single, require_all=True)
        best = os.path.join(args.run, f"{args.name}.keras")
        single.save(best)
        model = single
    cfg = model.dmtl_config
    data_dir = args.data_dir or DATASETS[args.dataset].data_dir(default_data_root(__file__))
    recalibrated = ""
    if args.bn_recalibrate:
        from facezoo.data.pipeline import pipeline
        from facezoo.data.tfrecord import read_manifest
        from facezoo.optimize.batchnorm import recalibrate_batchnorm
        from facezoo.train.runner import prepare
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
        recalibrated = (f" BatchNorm statistics re-estimated on {n} batches of {bn_batch} {args.dataset} "
                        f"training images "
                        f"(no augmentation; facezoo.optimize.batchnorm.recalibrate_batchnorm), never on validation "
                        f"images. Whether to ship re-estimated statistics was decided by measuring the model both "
                        f"ways on the validation split.")
    recipe = DATASETS[args.dataset]
    rel_data = os.path.relpath(data_dir, os.path.join(os.path.dirname(__file__), ".."))
    description = recipe.description
    if trained_on != [args.dataset]:
        description += (f" The trunk was trained on {' and '.join(trained_on)} (one branch per data set, thesis "
                        f"§3.4); this model is that trunk with the {args.dataset} branch.")
    if trunk_info:
        description += (" Its trunk was first distilled from dlib's face embedding (recipes/distill_trunk.py, "
                        "ImageNet-initialised).")
    if shipped:
        description += f" Training continued from the previously shipped {shipped[0]['name']}."
    train_cmd = " && ".join(train_command(r) for r in prior + chain)
    if len(run["datasets"]) > 1 or args.bn_recalibrate or args.float16_storage:  # shipping changes the weights
        train_cmd += (f" && python recipes/ship_dmtl.py --run runs/{os.path.basename(os.path.normpath(args.run))}"
                      f" --name {args.name} --dataset {args.dataset}"
                      + (" --bn-recalibrate" if args.bn_recalibrate else "")
                      + (" --float16-storage" if args.float16_storage else ""))
    eval_cmd = f"facezoo evaluate {args.name} --data-dir {rel_data}"
    card = ModelCard(
        name=args.name, task=recipe.task, description=description,
        architecture={"family": "DMTL", "backbone": cfg.backbone, "width": cfg.width,
                      "params": int(model.count_params()), "flops": 2 * count_macs(model),
                      "config": cfg.to_dict()},
        preprocessing=PreprocessSpec(tuple(cfg.input_size), color=recipe.color, framing=recipe.framing).to_dict(),
        label_spaces=[recipe.label_space.to_dict()],
        training_data={"dataset": args.dataset, "source": recipe.source,
                       "trained_on": {n: DATASETS[n].source for n in trained_on},
                       "stages": list(earlier.get("stages", ())) + [
                           {"datasets": r["config"]["datasets"], "epochs": r["config"]["epochs"],
                            "input_size": r["config"]["input_size"], "learning_rate": r["config"]["learning_rate"],
                            "init": bool(r["config"]["init"])} for r in chain],
                       "pretrained_trunk": trunk_info,
                       "val_percent": run["val_percent"], "split_salt": SPLIT_SALT,
                       "epochs": run["epochs"], "best_epoch": best_epoch,
                       "selection": "best epoch of the last stage by the validation score (mean over the "
                                    "data sets trained on); choices between runs, if any, are in the notes"},
        split="; ".join(f"{n}: {DATASETS[n].split_rule(run['val_percent'])}" for n in trained_on),
        license=" ".join(([shipped[0]["license"]] if shipped else [r["license"] for r in trunk_runs])
                         + [DATASETS[n].license for n in trained_on if n not in earlier.get("trained_on", ())]),
        train_command=train_cmd, evaluate_command=eval_cmd, headline=recipe.headline,
        abstain_below=0.5,
        notes="Decision threshold 0.5 for every binary attribute (not tuned). A head abstains when its "
              "self-evaluation confidence is below abstain_below." + recalibrated
              + (" " + args.note.strip() if args.note.strip() else ""))
    out = os.path.join(args.exported, args.name)
    with open(os.path.join(args.run, "state.json")) as f:
        history = json.load(f)["history"]
    eval_dir = os.path.join(args.run, "evaluation", args.name)
    os.makedirs(eval_dir, exist_ok=True)
    curves = os.path.join(eval_dir, "curves.png")  # this data set's curves only
    extra = [curves] if plot_history(history, curves, [args.dataset]) else []
    card = package_model(best, out, card, extra_files=extra, float16_storage=args.float16_storage)

    report = evaluate(args.name, data_dir, dataset=args.dataset, out=eval_dir, max_misclassified=0,
                      directory=out)
    card.metrics = {"val": {args.dataset: report["summary"]}}
    card.notes += (f" Measured by `{eval_cmd}` on {report['n_images']} validation images; "
                   f"batch-1 latency {report['batch1_latency_ms']} ms (tf.function, 2-core CPU).")
    for part in recipe.parts:  # a data set of several sources: the evaluator's figures per source too
        part_dir = os.path.join(data_dir, part)
        if not os.path.isdir(part_dir):
            continue
        try:
            part_report = evaluate(args.name, part_dir, dataset=args.dataset, out=os.path.join(eval_dir, part),
                                   max_misclassified=0, plots=False, latency=False, directory=out)
        except UsageError as e:  # e.g. no validation image from this source
            print(f"{part}: not evaluated alone: {e}")
            continue
        card.metrics["val"][f"{args.dataset}/{part}"] = {**part_report["summary"], "n_images": part_report["n_images"]}
        card.notes += (f" {part}: `{eval_cmd}/{part}` ({part_report['n_images']} validation images).")
    for png in sorted(os.listdir(eval_dir)):
        if png == "per_attribute.png" or (png.startswith("confusion_") and png.endswith(".png")):
            shutil.copyfile(os.path.join(eval_dir, png), os.path.join(out, png))
    card = finalize_files(out, card)  # every file now in the folder, with its sha256
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
