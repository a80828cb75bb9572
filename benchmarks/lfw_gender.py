"""LFW gender through ``facezoo.analyze`` on the people ``dmtl_face`` validates on, for every gender-reading model.

The photos are LFW's (``male_names.txt`` / ``female_names.txt``); by default only the people of View-2 folds 1-3
(``facezoo.data.face_union.LfwGenderReader``'s validation people, whom neither ``dmtl_face`` nor its distilled trunk
saw), ``--people all`` for every photo (then ``dmtl_face`` is partly scored on its own training people). Each photo
goes through ``analyze`` (RetinaFace, the largest face, aligned onto each model's framing); a photo without a face
counts as wrong. Gender is ``gender`` for models with that head and ``Male`` for CelebA's. Prints a table, writes JSON.

    python benchmarks/lfw_gender.py --out benchmarks/results/lfw_gender.json
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gender_of(attributes: dict) -> str | None:
    if "gender" in attributes:
        return attributes["gender"]["label"]
    if "Male" in attributes:
        return "male" if attributes["Male"]["present"] else "female"
    return None


def metrics(pred, truth) -> dict:
    pred, truth = np.asarray(pred), np.asarray(truth)
    return {"accuracy": float(np.mean(pred == truth)),
            "balanced_accuracy": float(np.mean([np.mean(pred[truth == c] == c) for c in ("male", "female")])),
            "female_recall": float(np.mean(pred[truth == "female"] == "female")),
            "male_recall": float(np.mean(pred[truth == "male"] == "male"))}


def main(argv=None) -> int:
    from facezoo.train.recipe_args import default_data_root
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="dmtl_face,dmtl_utkface,dmtl_celeba",
                   help="comma-separated models that read gender (default: %(default)s; absent ones are skipped)")
    p.add_argument("--people", choices=("val", "all"), default="val")
    p.add_argument("--data-dir", default=os.path.join(default_data_root(__file__), "lfw"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", help="JSON file to write")
    args = p.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        p.error(f"--data-dir {args.data_dir} is not a directory")

    import facezoo
    from facezoo.data.face_union import LfwGenderReader
    from facezoo.face.analyze import FaceAnalyzer
    from tqdm import tqdm
    records = [r for r in LfwGenderReader(args.data_dir).records() if args.people == "all" or r.split == "val"]
    truth = ["male" if r.labels["gender"] == 0 else "female" for r in records]
    names = [m for m in args.models.split(",") if m in facezoo.list_models()]
    if not names:
        p.error(f"none of {args.models} is installed")
    analyzers = {n: FaceAnalyzer((n,)) for n in names}  # one each: analyze keeps the first model's "gender"
    preds = {n: [] for n in names}
    missed = 0
    for start in tqdm(range(0, len(records), args.batch_size), desc="analyze", unit="batch"):
        batch = [r.image for r in records[start:start + args.batch_size]]
        for n, analyzer in analyzers.items():
            for result in analyzer.analyze(batch, max_faces=1):
                faces = result["faces"]
                missed += not faces and n == names[0]
                preds[n].append((gender_of(faces[0]["attributes"]) if faces else None) or "none")
    rows = {n: metrics(preds[n], truth) for n in names}
    result = {"people": args.people, "photos": len(records), "people_count": len({r.identity for r in records}),
              "male_share": truth.count("male") / len(truth), "faces_found": 1 - missed / len(records),
              "models": rows, "command": "python benchmarks/lfw_gender.py " + " ".join(
                  argv if argv is not None else sys.argv[1:])}
    print(f"LFW gender through analyze: {len(records)} photos of {result['people_count']} people "
          f"({args.people}), {100 * result['male_share']:.1f}% male, faces found {100 * result['faces_found']:.2f}%")
    print(f"{'model':14} {'accuracy':>9} {'balanced':>9} {'female':>8} {'male':>8}")
    for n, m in rows.items():
        print(f"{n:14} {100 * m['accuracy']:8.2f}% {100 * m['balanced_accuracy']:8.2f}% "
              f"{100 * m['female_recall']:7.2f}% {100 * m['male_recall']:7.2f}%")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
