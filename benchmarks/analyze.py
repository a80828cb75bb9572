"""The analyze path measured on real photos: alignment parity, LFW gender, and time per photo.

Run from the repository root (data from ``$FACEZOO_DATA`` or ``../shared/data``). Prints tables and writes JSON.

* ``alignment``: on each model's validation split (the shipped aligned crops), ``analyze`` (detect the face,
  align it to the card's framing) against ``predict`` on the same files: mean accuracy, gender, age MAE.
  If the framing is right, detection + alignment cost (almost) nothing.
* ``lfw``: the staged LFW news photos (250x250, face in the middle, wide margin) with gender from
  ``male_names.txt`` / ``female_names.txt``: ``analyze`` against ``predict`` on the whole photo, accuracy and
  balanced accuracy for ``dmtl_celeba``'s Male and ``dmtl_utkface``'s gender.
* ``timing``: milliseconds per photo of the whole analyze path (decode, detect, align, every model) at
  batch 1 and batched, median of interleaved rounds: the default models (``dmtl_face``) against the three
  single-source models the default was before.

Examples:
    python benchmarks/analyze.py --out benchmarks/results/analyze.json
    python benchmarks/analyze.py --parts timing --limit 200
"""
import argparse
import json
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("FACEZOO_DATA", os.path.join(REPO, "..", "shared", "data"))


def _records(dataset, limit):
    from facezoo.data import READERS
    from facezoo.data.splits import split_records
    val = [r for r in split_records(READERS[dataset](os.path.join(DATA, dataset)).records()) if r.split == "val"]
    return val[::max(1, len(val) // limit)][:limit] if limit else val


def _score(dataset, attrs_list, records):
    import numpy as np
    if dataset == "celeba":
        names = [n for n in records[0].labels]
        acc = [np.mean([(a[n]["present"]) == bool(r.labels[n]) for a, r in zip(attrs_list, records)]) for n in names]
        return {"mean_accuracy": float(np.mean(acc))}
    from facezoo.attributes import UTKFACE
    genders = UTKFACE["gender"].classes
    g = np.mean([genders.index(a["gender"]["label"]) == r.labels["gender"] for a, r in zip(attrs_list, records)])
    mae = np.mean([abs(a["age"]["value"] - r.labels["age"]) for a, r in zip(attrs_list, records)])
    return {"gender_accuracy": float(g), "age_mae": float(mae)}


def alignment(limit):
    import facezoo
    from facezoo.face.analyze import FaceAnalyzer
    rows = []
    for dataset, name in (("celeba", "dmtl_celeba"), ("utkface", "dmtl_utkface")):
        records = _records(dataset, limit)
        model = facezoo.load(name)
        files = [r.image for r in records]
        predicted = [p["attributes"] for p in model.predict(files, batch_size=64)]
        analyzer = FaceAnalyzer([model])
        found, kept_pred, kept_rec = [], [], []
        for start in range(0, len(files), 64):
            for k, result in enumerate(analyzer.analyze(files[start:start + 64], max_faces=1)):
                if result["faces"]:
                    found.append(result["faces"][0]["attributes"])
                    kept_pred.append(predicted[start + k])
                    kept_rec.append(records[start + k])
        row = {"dataset": dataset, "model": name, "images": len(files), "faces_found": len(found) / len(files),
               "predict": _score(dataset, kept_pred, kept_rec), "analyze": _score(dataset, found, kept_rec)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _lfw(limit):
    root = os.path.join(DATA, "lfw")
    gender = {}
    for fname, g in (("male_names.txt", "male"), ("female_names.txt", "female")):
        with open(os.path.join(root, fname)) as f:
            for line in f:
                if line.strip():
                    gender[line.strip()] = g
    items = []
    for name in sorted(gender):
        person = name.rsplit("_", 1)[0]
        path = os.path.join(root, "lfw-deepfunneled", person, name)
        if os.path.isfile(path):
            items.append((path, gender[name]))
    return items[::max(1, len(items) // limit)][:limit] if limit else items


def _gender_metrics(pred, truth):
    import numpy as np
    pred, truth = np.asarray(pred), np.asarray(truth)
    acc = float(np.mean(pred == truth))
    bal = float(np.mean([np.mean(pred[truth == c] == c) for c in ("male", "female")]))
    return {"accuracy": acc, "balanced_accuracy": bal}


def lfw(limit):
    import facezoo
    from facezoo.face.analyze import FaceAnalyzer
    items = _lfw(limit)
    files, truth = [p for p, _ in items], [g for _, g in items]
    celeba, utk = facezoo.load("dmtl_celeba"), facezoo.load("dmtl_utkface")
    whole_celeba = ["male" if r["attributes"]["Male"]["present"] else "female"
                    for r in celeba.predict(files, batch_size=64)]
    whole_utk = [r["attributes"]["gender"]["label"] for r in utk.predict(files, batch_size=64)]
    analyzer = FaceAnalyzer([celeba, utk])
    a_celeba, a_utk, missed = [], [], 0
    for start in range(0, len(files), 64):
        for result in analyzer.analyze(files[start:start + 64], max_faces=1):
            if not result["faces"]:
                missed += 1
                a_celeba.append("none")
                a_utk.append("none")
                continue
            attrs = result["faces"][0]["attributes"]
            a_celeba.append("male" if attrs["Male"]["present"] else "female")
            a_utk.append(attrs["gender"]["label"])
    row = {"photos": len(files), "male_share": truth.count("male") / len(truth),
           "faces_found": 1 - missed / len(files),
           "dmtl_celeba": {"whole_photo": _gender_metrics(whole_celeba, truth),
                           "analyze": _gender_metrics(a_celeba, truth)},
           "dmtl_utkface": {"whole_photo": _gender_metrics(whole_utk, truth), "analyze": _gender_metrics(a_utk, truth)}}
    print(json.dumps(row), flush=True)
    return row


SINGLE_SOURCE = ("dmtl_celeba", "dmtl_utkface", "expression_fer")


def timing(limit, rounds=3):
    """ms per photo of the default models (``dmtl_face``: every head in one pass) as their cards configure them
    (with the flip test where a card has it), of the same without the flip test, and of the three single-source
    models that were the default before it, interleaved round by round on the same photos."""
    import facezoo
    from facezoo.face.analyze import DEFAULT_MODELS, FaceAnalyzer
    files = [p for p, _ in _lfw(limit)]
    paths = {"default": DEFAULT_MODELS, "default_no_flip": DEFAULT_MODELS, "single_source": SINGLE_SOURCE}
    analyzers = {k: FaceAnalyzer([facezoo.load(n, **({"flip_test": False} if k == "default_no_flip" else {}))
                                  for n in names]) for k, names in paths.items()}
    for analyzer in analyzers.values():
        analyzer.analyze(files[:8])  # warm up: traces every graph
    times = {k: {"batch1": [], "batched32": []} for k in paths}
    for _ in range(rounds):
        for k, analyzer in analyzers.items():
            t = time.perf_counter()
            for f in files:
                analyzer.analyze(f)
            times[k]["batch1"].append((time.perf_counter() - t) / len(files) * 1000)
            t = time.perf_counter()
            for start in range(0, len(files), 32):
                analyzer.analyze(files[start:start + 32])
            times[k]["batched32"].append((time.perf_counter() - t) / len(files) * 1000)
            time.sleep(1)  # ONNX Runtime / BLAS threads settle before the next path
    row = {"photos": len(files), "rounds": rounds,
           "path": "decode + detect (RetinaFace, working size 160) + align + every model"}
    for k, names in paths.items():
        row[k] = {"models": list(names), "flip_test": [bool(m.flip_test) for m in analyzers[k].models],
                  **{f"ms_per_photo_{m}": statistics.median(v) for m, v in times[k].items()},
                  **{f"range_{m}": [min(v), max(v)] for m, v in times[k].items()}}
    print(json.dumps(row), flush=True)
    print(f"{'models':48} {'batch 1 ms/photo':>17} {'batched 32':>11}")
    for k in paths:
        label = ",".join(row[k]["models"]) + (" (flip test)" if any(row[k]["flip_test"]) else " (plain)")
        print(f"{label:48} {row[k]['ms_per_photo_batch1']:17.1f} "
              f"{row[k]['ms_per_photo_batched32']:11.1f}")
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="alignment,lfw,timing", help="comma list of alignment, lfw, timing")
    p.add_argument("--limit", type=int, default=0, help="images per part (0: all; timing uses 200 when 0)")
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)
    parts = args.parts.split(",")
    unknown = set(parts) - {"alignment", "lfw", "timing"}
    if unknown:
        p.error(f"unknown parts {sorted(unknown)}")
    if not os.path.isdir(DATA):
        p.error(f"{DATA} is not a directory (set FACEZOO_DATA)")
    from facezoo.cli import quiet_tensorflow
    quiet_tensorflow()
    import multiprocessing
    results = {"command": "python benchmarks/analyze.py " + " ".join(argv or sys.argv[1:]),
               "cpus": multiprocessing.cpu_count()}
    if "alignment" in parts:
        results["alignment"] = alignment(args.limit)
    if "lfw" in parts:
        results["lfw"] = lfw(args.limit)
    if "timing" in parts:
        results["timing"] = timing(args.limit or 200)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
