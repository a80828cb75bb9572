"""Score precomputed face embeddings (e.g. dlib's descriptors, the reference) by the LFW View-2 protocol.

Reads ``.npz`` files holding ``files`` (image paths: full, relative to any root, or file names) and ``emb``
((N, D) vectors), optionally ``found`` (False rows are images without a face: their pairs count as failed) —
the layout of ``recipes/teacher_embeddings.py``'s chunks — and runs ``facezoo.evaluation.verification``'s
protocol on the chosen folds: leave-one-fold-out accuracy, ROC AUC, TAR at FAR, plots. ``--normalise`` scales
each vector to unit length first (dlib's are not; its own threshold is 0.6 on raw vectors).

    python recipes/score_embeddings.py runs/teacher/lfw/chunk_*.npz --folds 1-3 --out runs/teacher/lfw_eval
"""
import argparse
import json
import os
import sys

from facezoo.train.recipe_args import default_data_root


def read_vectors(paths, normalise: bool = False) -> dict:
    """``{file: vector}`` from the npz files (``allow_pickle=False``); rows with ``found`` False are left out."""
    import numpy as np

    from facezoo.errors import DataFormatError, MissingDataError
    vectors = {}
    for path in paths:
        if not os.path.isfile(path):
            raise MissingDataError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as data:
                files, emb = [str(f) for f in data["files"]], np.asarray(data["emb"], np.float64)
                found = np.asarray(data["found"], bool) if "found" in data.files else np.ones(len(files), bool)
        except (OSError, ValueError, KeyError) as e:
            raise DataFormatError(f"{path}: expected arrays 'files' and 'emb' ({type(e).__name__}: {e})") from None
        if emb.ndim != 2 or len(emb) != len(files) or len(found) != len(files):
            raise DataFormatError(f"{path}: 'files' ({len(files)}), 'emb' {emb.shape} and 'found' disagree")
        if normalise:
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        vectors.update({f: v for f, v, ok in zip(files, emb, found) if ok})
    return vectors


def main(argv=None):
    root = os.path.join(default_data_root(__file__), "lfw")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("npz", nargs="+", help=".npz files with 'files' and 'emb' (and optionally 'found')")
    p.add_argument("--data-dir", default=root, help=f"LFW root with pairs.txt (default {root})")
    p.add_argument("--folds", default="1-3", help="folds to score (default 1-3; 'all' for every fold)")
    p.add_argument("--normalise", action="store_true", help="scale vectors to unit length first")
    p.add_argument("--name", default="precomputed", help="what the table and plots call these vectors")
    p.add_argument("--out", help="folder for metrics.json and the plots")
    args = p.parse_args(argv)

    from facezoo.errors import UserError
    from facezoo.evaluation import verification as V
    try:
        vectors = read_vectors(args.npz, args.normalise)
        pairs = V.load_pairs(args.data_dir)
        folds = V.parse_folds(args.folds)
        result = V.evaluate_embeddings(vectors, pairs, folds)
    except UserError as e:
        print(f"score_embeddings: error: {e}", file=sys.stderr)
        return 2
    used = result["folds"]
    report = {"model": args.name, "task": "verification", "protocol": "LFW View-2 pairs, leave-one-fold-out threshold",
              "data": {"data_dir": os.path.abspath(args.data_dir), "folds": used, "folds_from": "--folds",
                       "note": f"precomputed vectors from {len(args.npz)} file(s), normalised: {args.normalise}"},
              "summary": result["summary"], "per_fold": result["per_fold"], "tar_at_far": result["tar_at_far"]}
    print(V.format_table(report))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "metrics.json"), "w") as f:
            json.dump(report, f, indent=1)
        V.plot_all(result["distances"], result["same"], args.out, title=f"{args.name} on LFW folds "
                   f"{V.folds_text(used)}")
        print(f"\nwrote {os.path.join(args.out, 'metrics.json')} and plots to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
