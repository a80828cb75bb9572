"""Choose a shipped attribute or expression model's flip test on validation, and re-measure its card with it.

The flip test (``facezoo.optimize.flip_test_network``) averages every output over each face and its mirror image.
Whether a model ships with it is a choice between two named configurations of the same weights, plain and
flip test, and validation makes it: this recipe measures both with the evaluator on every validation split the
card lists (``metrics["val"]``: its ``evaluate_command``'s data set, and ``<branch>/<source>`` keys on
``--data-root/<source>``), keeps the flip test when its headline figure is better, rewrites the card's metrics
with the chosen configuration's figures (batch-1 latency of both), re-measures ``cross_dataset`` CK+ when the card
has it (``recipes/eval_expression_transfer.py``'s measurement) and says in the notes what validation chose.
The weights, graphs and quantization figures are untouched (graphs run the mirror images in the same call).

For a verification model the rule is its shipping rule: the threshold is chosen on the card's threshold folds
(``training_data["threshold_folds"]``) under each configuration, the one with the better best accuracy there is
kept (folds ``evaluation_folds`` choose nothing), its threshold and a refitted ``pair_head.npz`` (same features)
go onto the card, and the evaluation folds are re-measured (``facezoo evaluate``'s report and plots).

Examples:
    python recipes/flip_card.py --model dmtl_face
    python recipes/flip_card.py --model expression_fer --data-root ../shared/data
    python recipes/flip_card.py --model verify_face
"""
import argparse
import os
import shlex
import sys

from facezoo.train.recipe_args import default_data_root

LOWER_IS_BETTER = ("age_mae",)


def card_splits(card, data_root: str) -> list[tuple[str, str]]:
    """``(metrics key, data folder)`` for each validation entry of the card."""
    words = shlex.split(card.evaluate_command)
    default = words[words.index("--data-dir") + 1] if "--data-dir" in words else None
    out = []
    for key in card.metrics.get("val", {}):
        if "/" in key:
            out.append((key, os.path.join(data_root, key.split("/", 1)[1])))
        elif default is not None:
            out.append((key, default))
        else:
            raise SystemExit(f"{card.name}: no data folder for metrics['val'][{key!r}] (evaluate_command has none)")
    return out


def better(headline: str, flip: float, plain: float) -> bool:
    return flip < plain if headline in LOWER_IS_BETTER else flip > plain


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--model", required=True, help="a shipped attribute or expression model, e.g. dmtl_face")
    p.add_argument("--data-root", default=None, help="folder of the data sets (default ../shared/data)")
    p.add_argument("--ckplus", default=None, help="CK+ root for cross_dataset (default DATA_ROOT/ckplus)")
    p.add_argument("--exported", default=os.path.join(os.path.dirname(__file__), "..", "exported"))
    p.add_argument("--dry-run", action="store_true", help="print both configurations' figures, write nothing")
    args = p.parse_args(argv)

    from facezoo.evaluation.report import evaluate
    from facezoo.zoo import ModelCard
    from facezoo.zoo.package import finalize_files

    data_root = args.data_root or default_data_root(__file__)
    folder = os.path.join(args.exported, args.model)
    if not os.path.isfile(os.path.join(folder, "card.json")):
        p.error(f"--model {args.model}: no {folder}/card.json")
    card = ModelCard.from_json(os.path.join(folder, "card.json"))
    if card.task == "verification":
        return flip_verification(args, card, folder, data_root)
    if card.task not in ("attributes", "expression"):
        p.error(f"--model {args.model} is a {card.task} model; the flip test is for attribute, expression and "
                "verification models")
    splits = card_splits(card, data_root)
    for key, data_dir in splits:
        if not os.path.isdir(data_dir):
            p.error(f"metrics['val'][{key!r}]: data folder {data_dir} is missing")

    measured = {False: {}, True: {}}
    latency = {}
    for flip in (False, True):
        for i, (key, data_dir) in enumerate(splits):
            report = evaluate(args.model, data_dir, directory=folder, plots=False, latency=i == 0, flip_test=flip)
            measured[flip][key] = report["summary"]
            if i == 0:
                latency[flip] = report["batch1_latency_ms"]
            print(f"{args.model} {key} {'flip test' if flip else 'plain'}: {card.headline} "
                  f"{report['summary'][card.headline]:.4f}", flush=True)
    first = splits[0][0]
    headline = card.headline
    chosen = better(headline, measured[True][first][headline], measured[False][first][headline])
    command = f"python recipes/flip_card.py --model {args.model}"
    rows = ", ".join(f"{key} {measured[False][key][headline]:.4f} plain, {measured[True][key][headline]:.4f} flip"
                     for key, _ in splits)
    print(f"validation chose: {'flip test' if chosen else 'plain'} ({first} {headline})")
    if args.dry_run:
        return 0

    card.architecture = {**card.architecture, "flip_test": chosen}
    card.metrics["val"] = {key: measured[chosen][key] for key, _ in splits}
    card.metrics["val"][first] = {**card.metrics["val"][first], "batch1_latency_ms": latency[chosen]}
    note = (f" Flip test: validation compared two named configurations of these weights, plain and the flip test "
            f"(every output the mean of its logits on the face and on its mirror image), by {first} {headline} "
            f"(`{command}`; {headline}: {rows}); it chose {'the flip test' if chosen else 'plain'}, which "
            f"architecture.flip_test records and every backend applies (facezoo.load(..., flip_test=False) turns "
            f"it off), and the card's validation metrics are that configuration's, one more choice made on "
            f"validation. Batch-1 latency measured in the same run: {latency[False]:.2f} ms plain, "
            f"{latency[True]:.2f} ms with the flip test (both views in one graph, 2-core CPU). The quantization "
            f"figures were measured without the flip test.")
    ck = card.metrics.get("cross_dataset", {}).get("ckplus")
    if ck is not None:
        ck_root = args.ckplus or os.path.join(data_root, "ckplus")
        from facezoo import load
        from facezoo.attributes import CKPLUS
        from facezoo.data import READERS
        from facezoo.evaluation.cross_dataset import evaluate_expression_transfer
        model = load(args.model, directory=folder, flip_test=chosen)
        records = list(READERS["ckplus"](ck_root).records())
        crops = None
        if ck.get("align") == "detect":
            from facezoo.data.face_crops import aligned_crops
            from facezoo.data.face_union import UPSCALE_BELOW, default_cache_dir
            crops, found = aligned_crops([r.image for r in records], model.spec, default_cache_dir(),
                                         upscale_below=UPSCALE_BELOW, fallback="mean")
        report = evaluate_expression_transfer(model, records, CKPLUS, crops=crops)
        before = ck["accuracy_shared"]
        card.metrics["cross_dataset"]["ckplus"] = {
            **{k: report[k] for k in ("n", "n_shared", "accuracy_shared", "accuracy_all", "per_class") if k in report},
            "align": ck.get("align"), **({"faces_found": float(found.mean())} if crops is not None else {})}
        note += (f" CK+ (kept aside, never chosen on) re-measured with the chosen configuration: "
                 f"{report['accuracy_shared']:.4f} on the shared classes ({before:.4f} before), "
                 f"{report['accuracy_all']:.4f} on all 7.")
        print(f"{args.model} CK+ shared classes: {before:.4f} -> {report['accuracy_shared']:.4f}")
    card.notes += note
    finalize_files(folder, card)
    print(f"wrote {folder}/card.json")
    return 0


def flip_verification(args, card, folder: str, data_root: str) -> int:
    """The verification branch of ``main`` (see the module docstring)."""
    import shutil

    import numpy as np

    from facezoo import zoo
    from facezoo.evaluation import verification as V
    from facezoo.inference.embedding import PAIR_HEAD_FILE
    from facezoo.zoo.package import finalize_files

    words = shlex.split(card.evaluate_command)
    lfw = words[words.index("--data-dir") + 1] if "--data-dir" in words else os.path.join(data_root, "lfw")
    if not os.path.isfile(os.path.join(lfw, "pairs.txt")):
        raise SystemExit(f"{card.name}: no pairs.txt in {lfw}")
    threshold_folds = tuple(card.training_data.get("threshold_folds") or ())
    if not threshold_folds:
        raise SystemExit(f"{card.name}: the card records no threshold_folds to choose on")
    chosen_pairs = V.select_pairs(V.load_pairs(lfw), threshold_folds)
    paths = sorted({x for q in chosen_pairs for x in (q.path_a, q.path_b)})
    embedder = zoo.load(card.name, directory=folder, backend="keras")  # what the evaluator measures
    found = {}
    for flip in (False, True):
        embedder.flip_test = flip
        vectors = V.model_vectors(embedder, paths)
        threshold, accuracy = V.best_threshold(V.pair_distances(chosen_pairs, vectors.get),
                                               [q.same for q in chosen_pairs])
        found[flip] = (threshold, accuracy, vectors)
        print(f"{card.name} {'flip test' if flip else 'plain'}: best accuracy {accuracy:.4f} on folds "
              f"{V.folds_text(threshold_folds)} at distance {threshold:.4f}", flush=True)
    chosen = found[True][1] > found[False][1]
    print(f"the threshold folds chose: {'flip test' if chosen else 'plain'}")
    if args.dry_run:
        return 0
    threshold, accuracy, vectors = found[chosen]
    card.architecture = {**card.architecture, "flip_test": chosen}
    before = {k: dict(v) for k, v in card.metrics.items()}
    card.thresholds = {**card.thresholds, "distance": round(threshold, 6)}
    note = ""
    if embedder.pair_head is not None:
        from facezoo.inference.pair_head import PairClassifier
        ok = [q for q in chosen_pairs if vectors[q.path_a] is not None and vectors[q.path_b] is not None]
        head = PairClassifier(embedder.pair_head.features).fit(
            np.stack([vectors[q.path_a] for q in ok]), np.stack([vectors[q.path_b] for q in ok]), [q.same for q in ok])
        head.save(os.path.join(folder, PAIR_HEAD_FILE))
        note = (f" pair_head.npz refitted on the same {len(ok)} pairs with these embeddings (training accuracy "
                f"{head.info['train_accuracy']:.4f}).")
    finalize_files(folder, card)
    out = os.path.join(folder, "eval")
    report = V.evaluate_verification(card.name, lfw, directory=folder, out=out)
    for f in (V.ROC_FILE, V.TAR_FILE, V.HIST_FILE):
        if os.path.isfile(os.path.join(out, f)):
            shutil.move(os.path.join(out, f), os.path.join(folder, f))
    shutil.rmtree(out)
    key = f"lfw_view2_folds_{V.folds_text(report['data']['folds'])}"
    summary = {**report["summary"], **{k: report[k] for k in ("batch1_latency_ms", "photo_latency_ms") if k in report}}
    card.metrics = {key: {"lfw": summary}}
    old = before.get(key, {}).get("lfw", {})
    card.notes += (f" Flip test: the two named configurations of these weights, plain and the flip test (each face "
                   f"embedded with its mirror image, the normalised mean kept), were compared by the shipping rule, "
                   f"best accuracy on the threshold folds {V.folds_text(threshold_folds)} "
                   f"(`python recipes/flip_card.py --model {card.name}`): {found[False][1]:.4f} plain, "
                   f"{found[True][1]:.4f} flip test; it chose {'the flip test' if chosen else 'plain'} "
                   f"(architecture.flip_test), whose threshold {threshold:.4f} the card now carries.{note} "
                   f"Folds {V.folds_text(report['data']['folds'])} re-measured with it: accuracy "
                   f"{summary['accuracy']:.4f} ({old.get('accuracy', float('nan')):.4f} before), AUC "
                   f"{summary['auc']:.4f} ({old.get('auc', float('nan')):.4f} before).")
    finalize_files(folder, card)
    print(V.format_table(report))
    print(f"wrote {folder}/card.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
