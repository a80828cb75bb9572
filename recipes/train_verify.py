"""Fine-tune a face-verification embedding (``verify_face``): triplet loss with online semi-hard mining on P x K
identity-balanced batches, optionally plus an additive-margin softmax over the training identities.

Run from the repository root. ``--init`` is the trunk or embedding model to start from (a ``.keras`` file, e.g.
the dlib-distilled student): a trunk ending in a feature map gets pooling, another output size a Dense layer, and
the output is made unit length (``facezoo.tasks.verify.embedding_model``). Identities: LFW's people with 2+
images, minus **every person of the evaluation folds** (``--eval-folds``, default 1-3; asserted), and CelebA's
identities (``identity_CelebA.txt``). A share of the people (``--val-percent``) is held out for validation pairs
that choose the best epoch. Every image is detected and aligned once onto the framing (``--align detect``,
cached under ``OUT/crops``; CelebA's aligned images are detected too). Resumable: run the same command again
after any stop and it continues from the last checkpoint.

Writes into ``--out``: ``ckpt/``, ``best.keras`` / ``last.keras`` (the training model), ``embedding.keras`` (the
embedding of the best epoch: what ``recipes/ship_verify.py`` packages), ``history.csv``, ``state.json``,
``run.json`` (config, command, identity counts) and ``curves.png``.

Examples:
    python recipes/train_verify.py --init runs/trunk/student.keras --epochs 20 --out runs/verify_face
    python recipes/train_verify.py --init runs/trunk/student.keras --am-weight 0.5 --out runs/verify_am
"""
import argparse
import json
import os
import shlex
import sys

from facezoo.train.recipe_args import default_data_root, positive_int


def build_parser():
    root = default_data_root(__file__)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", required=True, help="trunk or embedding model to fine-tune (.keras)")
    p.add_argument("--data-root", default=root, help=f"folder holding lfw/ and celeba/ (default {root})")
    p.add_argument("--eval-folds", default="1-3",
                   help="LFW View-2 folds kept for evaluation: none of their people trains (default 1-3)")
    p.add_argument("--no-lfw", action="store_true", help="do not train on LFW people")
    p.add_argument("--no-celeba", action="store_true", help="do not train on CelebA identities")
    p.add_argument("--max-people", type=positive_int, default=None, help="at most this many people per data set")
    p.add_argument("--val-percent", type=int, default=10, help="share of people held out for validation (10)")
    p.add_argument("--val-pairs", type=positive_int, default=1000, help="validation pairs (half same person)")
    p.add_argument("--framing", default="recognition_112", help="recognition_112 | facezoo_face (the distilled trunk)")
    p.add_argument("--align", default="detect", choices=("detect", "center"),
                   help="detect + align every image (default), or centre-crop images already in the framing")
    p.add_argument("--people", type=positive_int, default=16, help="P: people per batch (16)")
    p.add_argument("--images", type=positive_int, default=4, help="K: images per person per batch (4)")
    p.add_argument("--margin", type=float, default=0.2, help="triplet margin on squared distances (0.2)")
    p.add_argument("--am-weight", type=float, default=0.0, help="weight of the AM-softmax loss (0: off)")
    p.add_argument("--am-margin", type=float, default=0.35, help="AM-softmax margin (0.35)")
    p.add_argument("--am-scale", type=float, default=30.0, help="AM-softmax scale (30)")
    p.add_argument("--epochs", type=positive_int, default=20, help="epochs (20)")
    p.add_argument("--steps-per-epoch", type=positive_int, default=200, help="steps per epoch (200)")
    p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate at batch 64, scaled linearly (3e-4)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW decoupled weight decay (1e-4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="TensorFlow CPU threads (default: all)")
    p.add_argument("--out", default="runs/verify_face", help="run folder (default runs/verify_face)")
    return p


from facezoo.inference.embedding import FRAMINGS  # noqa: E402


def plot_curves(history, path):
    """Training loss (and its parts) and the validation pairs' AUC and accuracy per epoch, as a PNG."""
    from facezoo.evaluation.plots import _pyplot
    plt = _pyplot()
    if plt is None or not history:
        return None
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "triplet", "am_softmax"):
        if key in history[-1]:
            axes[0].plot(epochs, [r.get(key) for r in history], marker="o", label=key)
    axes[0].set(title="training loss", xlabel="epoch")
    axes[0].legend(fontsize=8)
    for key in sorted(k for k in history[-1] if k.endswith("/auc") or k.endswith("/accuracy")):
        axes[1].plot(epochs, [r.get(key) for r in history], marker="o", label=key)
    axes[1].set(title="validation pairs (held-out people)", xlabel="epoch")
    if any(k.endswith("/auc") for k in history[-1]):
        axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if not 0 <= args.val_percent < 100:
        p.error(f"--val-percent must be in 0..99, got {args.val_percent}")
    if args.no_lfw and args.no_celeba:
        p.error("--no-lfw and --no-celeba leave no training people")
    if args.framing not in FRAMINGS:
        p.error(f"--framing {args.framing!r}: choose from {', '.join(FRAMINGS)}")
    if not os.path.isfile(args.init):
        p.error(f"--init {args.init}: no such file")
    from facezoo.errors import UsageError
    from facezoo.evaluation.verification import parse_folds
    try:
        eval_folds = parse_folds(args.eval_folds)
    except UsageError as e:
        p.error(str(e))
    lfw_root, celeba_root = os.path.join(args.data_root, "lfw"), os.path.join(args.data_root, "celeba")
    for flag, use, folder in (("--no-lfw", not args.no_lfw, lfw_root), ("--no-celeba", not args.no_celeba,
                                                                        celeba_root)):
        if use and not os.path.isdir(folder):
            p.error(f"{folder} is not a directory (give --data-root, or {flag})")

    from facezoo.train.runner import set_threads
    set_threads(args.threads)
    from facezoo.data.face_crops import aligned_crops
    from facezoo.data.identities import celeba_identities, lfw_evaluation_people, lfw_training_people
    from facezoo.files import atomic_save_model, atomic_write
    from facezoo.inference.embedding import framing_spec
    from facezoo.models.weights import load_keras
    from facezoo.tasks import verify as V
    from facezoo.train.loop import Trainer, TrainConfig

    os.makedirs(args.out, exist_ok=True)
    base = load_keras(args.init)
    try:
        V.embedding_model(base)
    except ValueError as e:
        p.error(f"--init {args.init}: {e}")
    size = tuple(int(v) for v in base.input_shape[1:3])
    spec = framing_spec(args.framing, size)

    # People: LFW minus every evaluation person, and CelebA; a few people per source when --max-people.
    records, sources = [], {}
    if not args.no_lfw:
        lfw = lfw_training_people(lfw_root, eval_folds)
        sources["lfw"] = lfw
    if not args.no_celeba:
        sources["celeba"] = celeba_identities(celeba_root)
    for name, recs in sources.items():
        people = sorted({i for _, i in recs})
        if args.max_people:
            people = set(people[:args.max_people])
            recs = [r for r in recs if r[1] in people]
        records += recs
    if not args.no_lfw:
        excluded = {f"lfw:{n}" for n in lfw_evaluation_people(lfw_root, eval_folds)}
        assert not excluded & {i for _, i in records}, "an evaluation person is in the training set"
    crops, found = aligned_crops([r[0] for r in records], spec, os.path.join(args.out, "crops"), align=args.align)
    kept = [i for i in range(len(records)) if found[i]]
    print(f"{len(kept)} of {len(records)} images with a face ({len(records) - len(kept)} without, dropped)", flush=True)
    records, crops = [records[i] for i in kept], crops[kept]
    names = sorted({i for _, i in records})
    val_people = V.person_split(names, args.val_percent)
    train_idx = [i for i, (_, who) in enumerate(records) if who not in val_people]
    val_idx = [i for i, (_, who) in enumerate(records) if who in val_people]
    train_records = [records[i] for i in train_idx]
    _, _, train_names = V.label_records(train_records)
    # A resumed run draws new batches: the sampler's seed moves on with the step the checkpoint holds.
    state = os.path.join(args.out, "state.json")
    resume_step = 0
    if os.path.isfile(state):
        with open(state) as f:
            resume_step = int(json.load(f)["step"])
    train_data, _ = V.pk_dataset(train_records, args.people, args.images, spec=spec, crops=crops[train_idx],
                                 seed=args.seed + 7919 * resume_step)
    val_data = {}
    if val_idx:
        val_labels = V.label_records([records[i] for i in val_idx])[1]
        pairs = V.make_pairs(val_labels, args.val_pairs, seed=args.seed)
        val_data["val_pairs"] = V.pairs_dataset(pairs, spec=spec, crops=crops[val_idx])
    counts = {s: {"people": len({i for _, i in records if i.startswith(s + ":")}),
                  "images": sum(i.startswith(s + ":") for _, i in records)} for s in sources}
    print(f"training on {len(train_names)} people ({len(train_records)} images); {len(val_people)} people held out "
          f"for validation; by source: {counts}", flush=True)

    num_ids = len(train_names) if args.am_weight > 0 else 0
    task = V.VerifyTask(lambda: V.training_model(V.embedding_model(load_keras(args.init)), num_ids),
                        margin=args.margin, am_weight=args.am_weight, am_margin=args.am_margin, am_scale=args.am_scale)
    cfg = TrainConfig(epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, learning_rate=args.lr,
                      weight_decay=args.weight_decay, seed=args.seed,
                      monitor="score" if val_data else "loss", monitor_mode="max" if val_data else "min")
    command = "python recipes/train_verify.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                                                      else argv))
    run = {"command": command, "config": vars(args), "eval_folds": list(eval_folds), "sources": counts,
           "train_people": len(train_names), "train_images": len(train_records), "val_people": len(val_people),
           "val_images": len(val_idx), "preprocessing": spec.to_dict(), "init_model": base.name,
           "excluded": f"every person in a pair of LFW View-2 folds {args.eval_folds}"}
    atomic_write(os.path.join(args.out, "run.json"), json.dumps(run, indent=1) + "\n")
    trainer = Trainer(task, train_data, cfg, args.out, global_batch=args.people * args.images, val_data=val_data)
    history = trainer.fit()
    if not trainer.restore_best():
        print("no best.keras (no validation); using the last epoch", flush=True)
    atomic_save_model(V.embedding_of(trainer.model), os.path.join(args.out, "embedding.keras"))
    plot_curves(history, os.path.join(args.out, "curves.png"))
    best = max((r.get("score", float("-inf")) for r in history), default=None)
    print(f"wrote {os.path.join(args.out, 'embedding.keras')} (best validation AUC {best})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
