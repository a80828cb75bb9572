"""Package a face-verification embedding as a shipped model (``verify_face``): weights, card, threshold, metrics.

Steps: re-save the embedding model (``--run``'s ``embedding.keras``, or any ``--model`` file with a (N, dim)
unit-length output) into ``exported/<name>/model.keras`` (verified to load with ``safe_mode=True``); embed the LFW
photos of the **threshold folds** (default: every fold of ``pairs.txt`` that is not evaluated, 4-8 on the staged
copy) through the analyze path and choose the same-person distance threshold of best accuracy on their pairs
(optionally fit the binary pair head there too, ``--pair-head``); then run the evaluator — exactly what
``facezoo evaluate <name> --data-dir <lfw>`` runs — on the **evaluation folds** (default 1-3, the folds no training
person appears in) and write its summary, the command and the plots (ROC, TAR at FAR, distance histograms) on
the card. The threshold never sees an evaluation pair.

Examples:
    python recipes/ship_verify.py --run runs/verify_face --name verify_face
    python recipes/ship_verify.py --model runs/trunk/student_embedding.keras --name verify_face --pair-head abs+chi2
"""
import argparse
import json
import os
import shutil
import sys

from facezoo.train.recipe_args import default_data_root

LFW_LICENSE = ("LFW (Huang et al. 2007, UMass Amherst): news photographs released for research, no formal licence; "
               "cite the LFW technical report.")
FOLDS_NOTE = ("folds {eval}: no person of these folds is among the training people (LFW's 863 spare people, "
              "who also appear in folds 4-8, and CelebA identities); the threshold was chosen on folds {thr}")


def init_trunk_run(run: dict) -> dict:
    """The ``run.json`` of the distilled trunk (``recipes/distill_trunk.py``) a verification run started from, or {}."""
    init = (run.get("config") or {}).get("init")
    path = os.path.join(os.path.dirname(init), "run.json") if init else None
    if not path or not os.path.isfile(path):
        return {}
    with open(path) as f:
        prior = json.load(f)
    return prior if prior.get("kind") == "distill_trunk" else {}


def init_shipped_card(run: dict) -> dict:
    """The card of the shipped model a verification run continued (``--init exported/<name>/model.keras``), or {}."""
    from facezoo.zoo.package import shipped_card
    init = (run.get("config") or {}).get("init")
    return shipped_card(os.path.dirname(init) if init else None) or {}


def train_chain(run: dict, args, argv=None) -> str:
    """Every command that made the shipped model: the trunk's (when it was distilled here), the fine-tuning run's
    (without ``--threads``) and this packaging step's."""
    import shlex

    from facezoo.train.recipe_args import without_option
    command = " ".join(shlex.quote(a) for a in without_option(shlex.split(run["command"]), "--threads"))
    trunk, shipped = init_trunk_run(run), init_shipped_card(run)
    if trunk.get("command"):
        command = f"{trunk['command']} && {command}"
    elif shipped.get("train_command"):  # continued from a shipped model: every command that made it first
        command = f"{shipped['train_command']} && {command}"
    ship = without_option(sys.argv[1:] if argv is None else argv, "--exported")
    return f"{command} && python recipes/ship_verify.py " + " ".join(shlex.quote(a) for a in ship)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run folder of recipes/train_verify.py (its embedding.keras and run.json)")
    src.add_argument("--model", help="an embedding model (.keras) to package as it is")
    p.add_argument("--name", default="verify_face", help="registry name (default verify_face)")
    p.add_argument("--data-dir", default=None, help="LFW root with pairs.txt (default ../shared/data/lfw)")
    p.add_argument("--eval-folds", default=None, help="folds to report (default: the run's, else 1-3)")
    p.add_argument("--threshold-folds", default=None,
                   help="folds that choose the threshold (default: every other fold of pairs.txt)")
    p.add_argument("--pair-head", choices=("abs", "chi2", "abs+chi2"), default=None,
                   help="also fit and ship the binary head on these pair features (on the threshold folds)")
    p.add_argument("--framing", default="recognition_112", help="face framing of the model's crops")
    p.add_argument("--flip-test", action="store_true",
                   help="embed each face with its mirror image (card architecture['flip_test']); the threshold "
                        "and the reported figures are then those of the flip-averaged embeddings")
    p.add_argument("--note", default="", help="a sentence appended to the card's notes")
    p.add_argument("--extra-license", default="",
                   help="licence terms of the data the --init trunk learnt from (e.g. UTKFace's), added to the card's")
    p.add_argument("--no-latency", action="store_true", help="skip the batch-1 latency measurement")
    p.add_argument("--exported", default=os.path.join(os.path.dirname(__file__), "..", "exported"))
    args = p.parse_args(argv)

    data_dir = args.data_dir or os.path.join(default_data_root(__file__), "lfw")
    if not os.path.isfile(os.path.join(data_dir, "pairs.txt")):
        p.error(f"--data-dir {data_dir}: no pairs.txt there")
    run = None
    if args.run:
        with open(os.path.join(args.run, "run.json")) as f:
            run = json.load(f)
        source = os.path.join(args.run, "embedding.keras")
    else:
        source = args.model
    if not os.path.isfile(source):
        p.error(f"{source}: no such file")
    from facezoo.inference.embedding import FRAMINGS, framing_spec
    if args.framing not in FRAMINGS:
        p.error(f"--framing {args.framing!r}: choose from {', '.join(FRAMINGS)}")

    from facezoo import zoo
    from facezoo.data.datasets import DATASETS
    from facezoo.evaluation import verification as V
    from facezoo.inference.embedding import PAIR_HEAD_FILE
    from facezoo.models.flops import count_macs
    from facezoo.models.weights import load_keras
    from facezoo.zoo.package import finalize_files, package_model

    pairs = V.load_pairs(data_dir)
    all_folds = sorted({q.fold for q in pairs})
    eval_folds = V.parse_folds(args.eval_folds or (V.folds_text(run["eval_folds"]) if run else "1-3"))
    threshold_folds = (V.parse_folds(args.threshold_folds) if args.threshold_folds
                       else tuple(f for f in all_folds if f not in eval_folds))
    if set(eval_folds) & set(threshold_folds):
        p.error(f"threshold folds {V.folds_text(threshold_folds)} overlap the evaluation folds "
                f"{V.folds_text(eval_folds)}")
    if not threshold_folds:
        p.error("no fold is left to choose the threshold on; give --threshold-folds")

    original = source
    model = load_keras(source)
    if len(model.output_shape) != 2:
        p.error(f"{source}: output shape {model.output_shape} is not (N, dim) embeddings")
    import numpy as np
    probe = np.random.default_rng(0).uniform(-1, 1, (2, *model.input_shape[1:])).astype(np.float32)
    if not np.allclose(np.linalg.norm(np.asarray(model(probe)), axis=1), 1.0, atol=1e-3):
        # A student regressing raw descriptors: the card's contract is unit-length embeddings.
        from facezoo.files import atomic_save_model
        from facezoo.tasks.verify import embedding_model
        model = embedding_model(model, dim=int(model.output_shape[1]))
        source = os.path.join(args.exported, f".{args.name}-normalised.keras")
        os.makedirs(args.exported, exist_ok=True)
        atomic_save_model(model, source)
        print(f"{args.model or args.run}: outputs are not unit length; a UnitNormalization layer was appended")
    size = tuple(int(v) for v in model.input_shape[1:3])
    spec = framing_spec(args.framing, size)
    rel_data = os.path.relpath(data_dir, os.path.join(os.path.dirname(__file__), ".."))
    eval_text, thr_text = V.folds_text(eval_folds), V.folds_text(threshold_folds)
    celeba_license = DATASETS["celeba"].license
    trunk = init_trunk_run(run) if run else {}
    shipped = init_shipped_card(run) if run else {}
    trained = run["sources"] if run else {}
    card = zoo.ModelCard(
        name=args.name, task="verification",
        description=(f"Face verification: a {int(model.output_shape[1])}-d unit-length embedding of a {size[0]}x"
                     f"{size[1]} RGB face crop aligned to the {spec.framing.name} framing; two faces are the same "
                     "person when their Euclidean distance is at most thresholds['distance']."),
        architecture={"family": "embedding", "backbone": (run or {}).get("init_model", model.name),
                      "params": int(model.count_params()), "flops": 2 * count_macs(model),
                      "embedding_dim": int(model.output_shape[1]), "source": os.path.basename(original),
                      "normalised_by_packaging": source != original,
                      **({"flip_test": True} if args.flip_test else {})},
        preprocessing=spec.to_dict(), label_spaces=[],
        training_data={"sources": trained, "train_people": run.get("train_people") if run else None,
                       "excluded": run.get("excluded") if run else None,
                       "evaluation_folds": list(eval_folds), "threshold_folds": list(threshold_folds),
                       "folds_note": FOLDS_NOTE.format(eval=eval_text, thr=thr_text)},
        split=f"person-disjoint: LFW View-2 folds {eval_text} are evaluated, none of their people trained; the "
              f"threshold is chosen on folds {thr_text}",
        license=" ".join(
            ([shipped["license"]] if shipped.get("license") else
             ([LFW_LICENSE] if trained.get("lfw") else []) + ([celeba_license] if trained.get("celeba") else [])
             + ([trunk["license"]] if trunk.get("license") else []))
            + ([args.extra_license.strip()] if args.extra_license.strip() else [])
            or ["not recorded: give --extra-license with the terms of the data the embedding learnt from"]),
        train_command=train_chain(run, args, argv) if run else "", headline="accuracy",
        evaluate_command=f"facezoo evaluate {args.name} --data-dir {rel_data}")
    out = os.path.join(args.exported, args.name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    package_model(source, out, card)

    # The threshold (and pair head) from the threshold folds' pairs only.
    embedder = zoo.load(args.name, directory=out)
    chosen = V.select_pairs(pairs, threshold_folds)
    paths = sorted({x for q in chosen for x in (q.path_a, q.path_b)})
    vectors = V.model_vectors(embedder, paths)
    distances = V.pair_distances(chosen, vectors.get)
    threshold, threshold_acc = V.best_threshold(distances, [q.same for q in chosen])
    card.thresholds = {"distance": round(threshold, 6)}
    notes = [f"Threshold {threshold:.4f}: best accuracy ({threshold_acc:.4f}) on the {len(chosen)} pairs of LFW "
             f"folds {thr_text} (embedded through the analyze path), never on the evaluation folds {eval_text}; "
             f"folds {thr_text} may share people with the training set, which can make this threshold tighter "
             f"than one chosen on unseen people (accuracy_at_threshold on folds {eval_text} shows its effect)."]
    if args.pair_head:
        from facezoo.inference.pair_head import PairClassifier
        ok = [i for i, q in enumerate(chosen) if vectors[q.path_a] is not None and vectors[q.path_b] is not None]
        a = np.stack([vectors[chosen[i].path_a] for i in ok])
        b = np.stack([vectors[chosen[i].path_b] for i in ok])
        head = PairClassifier(args.pair_head).fit(a, b, [chosen[i].same for i in ok])
        head.save(os.path.join(out, PAIR_HEAD_FILE))
        notes.append(f"pair_head.npz: logistic regression on {args.pair_head} pair features fitted on the same "
                     f"{len(ok)} threshold-fold pairs (training accuracy {head.info['train_accuracy']:.4f}); "
                     "verify() reports its probability.")
    finalize_files(out, card)

    report = V.evaluate_verification(args.name, data_dir, directory=out, out=os.path.join(out, "eval"),
                                     latency=not args.no_latency)
    for f in (V.ROC_FILE, V.TAR_FILE, V.HIST_FILE):
        if os.path.isfile(os.path.join(out, "eval", f)):
            shutil.move(os.path.join(out, "eval", f), os.path.join(out, f))
    shutil.rmtree(os.path.join(out, "eval"))
    if os.path.basename(source).startswith(f".{args.name}-normalised"):
        os.remove(source)
    summary = {k: v for k, v in report["summary"].items()}
    for key in ("batch1_latency_ms", "photo_latency_ms"):
        if key in report:
            summary[key] = report[key]
    card.metrics = {f"lfw_view2_folds_{eval_text}": {"lfw": summary}}
    if args.flip_test:
        notes.append("flip_test: every face is embedded with its mirror image in one batch and the normalised mean "
                     "kept (threshold and figures are those embeddings'); batch1_latency_ms times the network on "
                     "one image, photo_latency_ms the whole path with both.")
    card.notes = " ".join(notes + [report["data"]["note"] + "."] + ([args.note.strip()] if args.note.strip() else []))
    finalize_files(out, card)
    print(V.format_table(report))
    print(f"\npackaged {out} (threshold {threshold:.4f} from folds {thr_text})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
