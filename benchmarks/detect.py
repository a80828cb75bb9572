"""Face detectors on the staged LFW and UTKFace photos: milliseconds per photo and how often a face is found.

Each photo of these sets shows one main face near the centre, so two rates are reported per detector:
``found`` (at least one face) and ``centre`` (a face whose box contains the image centre, i.e. the main
face rather than a face in the background). Detection runs with the detector's defaults
(``min_face=20``, its own score threshold). Times, on already decoded RGB arrays (JPEG decoding is
not counted), are for the full ``detector.detect`` call -- resize, network, decoding, NMS:

- ``ms_batch1``: median over ``--latency-photos`` photos of one call per photo (what a single request costs);
  ``ms_batch1_p10`` its 10th percentile, closer to the cost on an idle machine when the cores are shared,
- ``ms_batched``: wall time per photo of ``--batch``-photo calls over the whole set.

    python benchmarks/detect.py --out benchmarks/results/detect.json
    python benchmarks/detect.py --detectors mtcnn --limit 500          # mtcnn is ~100 ms per photo
"""
import argparse
import glob
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DATA_ROOT = os.environ.get("FACEZOO_DATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                        "shared", "data"))
DATASETS = {
    "lfw": "lfw/lfw-deepfunneled/*/*.jpg",
    "utkface": "utkface/UTKFace/*.jpg",
}


def photo_paths(root, pattern, limit):
    """Sorted paths, spread evenly over the set when ``limit`` is smaller than it."""
    paths = sorted(glob.glob(os.path.join(root, pattern)))
    if limit and limit < len(paths):
        step = len(paths) / limit
        paths = [paths[int(i * step)] for i in range(limit)]
    return paths


def covers_centre(face, shape):
    left, top, width, height = face.box
    cx, cy = shape[1] / 2, shape[0] / 2
    return left <= cx <= left + width and top <= cy <= top + height


def measure(detector, paths, batch, latency_photos, chunk=512):
    """Detection rates over ``paths`` and the two timings (see the module docstring)."""
    import numpy as np

    from facezoo.images import load_image
    found = centre = 0
    batched_s = 0.0
    faces_per_photo = []
    latency = []
    for start in range(0, len(paths), chunk):
        images = [load_image(p) for p in paths[start:start + chunk]]
        for i in range(0, len(images), batch):
            group = images[i:i + batch]
            t0 = time.perf_counter()
            results = detector.detect(group)
            batched_s += time.perf_counter() - t0
            for image, faces in zip(group, results):
                found += bool(faces)
                centre += any(covers_centre(f, image.shape) for f in faces)
                faces_per_photo.append(len(faces))
        for image in images[:max(0, latency_photos - len(latency))]:
            t0 = time.perf_counter()
            detector.detect([image])
            latency.append(time.perf_counter() - t0)
    n = len(paths)
    return {"photos": n, "found": found / n, "centre": centre / n, "missed": n - found,
            "mean_faces": sum(faces_per_photo) / n,
            "ms_batch1": statistics.median(latency) * 1000 if latency else None,
            "ms_batch1_p10": float(np.percentile(latency, 10) * 1000) if latency else None,
            "ms_batched": batched_s / n * 1000, "batch": batch}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detectors", nargs="+", default=["retinaface", "mtcnn"], choices=["retinaface", "mtcnn"])
    p.add_argument("--sizes", nargs="+", type=int, default=[128, 160, 192, 256],
                   help="RetinaFace working sizes to compare (longer side, pixels)")
    p.add_argument("--mtcnn-limit", type=int, default=500, help="photos per data set for mtcnn (0: all)")
    p.add_argument("--limit", type=int, default=0, help="photos per data set, spread evenly (0: all)")
    p.add_argument("--batch", type=int, default=32, help="photos per call for the batched timing")
    p.add_argument("--latency-photos", type=int, default=200, help="photos timed one call each")
    p.add_argument("--data", default=DATA_ROOT, help="folder holding lfw/ and utkface/")
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)

    import numpy as np

    from facezoo.face.detect import get_detector

    configs = []
    for name in args.detectors:
        if name == "retinaface":
            configs += [(name, {"working_size": s}, args.limit) for s in args.sizes]
        else:
            limit = min(filter(None, [args.limit, args.mtcnn_limit]), default=0)
            configs.append((name, {}, limit))

    rows = []
    for name, kwargs, limit in configs:
        try:
            detector = get_detector(name, **kwargs)
        except ImportError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        detector.detect([np.zeros((250, 250, 3), np.uint8)])  # trace / warm up
        for dataset, pattern in DATASETS.items():
            paths = photo_paths(args.data, pattern, limit)
            if not paths:
                print(f"skipping {dataset}: no photos under {args.data}", file=sys.stderr)
                continue
            row = {"detector": name, "working_size": getattr(detector, "working_size", None), "dataset": dataset,
                   "score_threshold": detector.default_score_threshold,
                   **measure(detector, paths, args.batch, args.latency_photos)}
            rows.append(row)
            print(f"{name:10s} {str(row['working_size']):>5s} {dataset:8s} {row['photos']:6d} photos  "
                  f"found {row['found']:7.2%}  centre {row['centre']:7.2%}  "
                  f"batch-1 {row['ms_batch1']:6.2f} ms  batched {row['ms_batched']:6.2f} ms/photo", flush=True)

    print()
    print("| detector | working size | data set | photos | found | centre face | faces/photo | ms batch 1 (median, p10) "
          f"| ms/photo batch {args.batch} |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['detector']} | {r['working_size']} | {r['dataset']} | {r['photos']} | {r['found']:.2%} | "
              f"{r['centre']:.2%} | {r['mean_faces']:.3f} | {r['ms_batch1']:.2f}, {r['ms_batch1_p10']:.2f} | "
              f"{r['ms_batched']:.2f} |")
    if args.out:
        import tensorflow as tf
        from facezoo.files import atomic_write_json
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_json(args.out, {
            "command": " ".join(["python", "benchmarks/detect.py", *(argv if argv is not None else sys.argv[1:])]),
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "tensorflow": tf.__version__},
            "note": "times exclude JPEG decoding; the machine's 2 cores were shared with other jobs",
            "results": rows})


if __name__ == "__main__":
    main()
