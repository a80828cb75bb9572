"""Face detectors on the staged LFW and UTKFace photos: milliseconds per photo and how often a face is found.

Run from the repository root (``python benchmarks/detect.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

Each photo of these sets shows one main face near the centre, so two rates are reported per detector:
``found`` (at least one face) and ``centre`` (a face whose box contains the image centre, i.e. the main
face rather than a face in the background). Detection runs with the detector's defaults
(``min_face=20``, its own score threshold). Times, on already decoded RGB arrays (JPEG decoding is
not counted), are for the full ``detector.detect`` call -- resize, network, decoding, NMS:

- ``ms_batch1``: median of one call per photo (what a single request costs); ``ms_batch1_p10`` its 10th
  percentile, closer to the cost on an idle machine when the cores are shared,
- ``ms_batched``: wall time per photo of ``--batch``-photo calls (median over rounds),

both on ``--latency-photos`` photos per data set, every detector timed in turn in each of ``--rounds``.

    python benchmarks/detect.py --out benchmarks/results/detect.json
    python benchmarks/detect.py --detectors mtcnn --limit 500          # mtcnn is ~100 ms per photo
"""
import argparse
import glob
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


def detection_rates(detector, paths, batch, chunk=512):
    """``found``, ``centre``, ``missed`` and mean faces per photo over ``paths``."""
    from facezoo.images import load_image
    found = centre = faces_total = 0
    for start in range(0, len(paths), chunk):
        images = [load_image(p) for p in paths[start:start + chunk]]
        for i in range(0, len(images), batch):
            group = images[i:i + batch]
            for image, faces in zip(group, detector.detect(group)):
                found += bool(faces)
                centre += any(covers_centre(f, image.shape) for f in faces)
                faces_total += len(faces)
    n = len(paths)
    return {"photos": n, "found": found / n, "centre": centre / n, "missed": n - found, "mean_faces": faces_total / n}


def interleaved_timings(detectors, images, batch, rounds):
    """Per detector: batch-1 call times (ms) and ms per photo of ``batch``-photo calls, taken in turns.

    Each round times every detector on the same photos one after the other, so load from other jobs on shared
    cores falls on all of them alike instead of on whichever ran during a busy minute.
    """
    single = {key: [] for key in detectors}
    batched = {key: [] for key in detectors}
    for _ in range(rounds):
        for key, (detector, n_photos) in detectors.items():
            sample = images[:n_photos]
            for image in sample:
                t0 = time.perf_counter()
                detector.detect([image])
                single[key].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            for i in range(0, len(sample), batch):
                detector.detect(sample[i:i + batch])
            batched[key].append((time.perf_counter() - t0) * 1000 / len(sample))
    return single, batched


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detectors", nargs="+", default=["retinaface", "mtcnn"], choices=["retinaface", "mtcnn"])
    p.add_argument("--sizes", nargs="+", type=int, default=[128, 160, 192, 256],
                   help="RetinaFace working sizes to compare (longer side, pixels)")
    p.add_argument("--limit", type=int, default=0, help="photos per data set for the rates, spread evenly (0: all)")
    p.add_argument("--mtcnn-limit", type=int, default=500, help="photos per data set for mtcnn's rates (0: all)")
    p.add_argument("--batch", type=int, default=32, help="photos per call for the batched timing")
    p.add_argument("--latency-photos", type=int, default=192, help="photos per data set in the timings")
    p.add_argument("--mtcnn-latency-photos", type=int, default=32, help="the same for mtcnn")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    p.add_argument("--data", default=DATA_ROOT, help="folder holding lfw/ and utkface/")
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)

    import numpy as np

    from facezoo.face.detect import get_detector
    from facezoo.images import load_image

    detectors = {}  # key -> (detector, rates limit, timing photos)
    for name in args.detectors:
        for kwargs in ([{"working_size": s} for s in args.sizes] if name == "retinaface" else [{}]):
            try:
                detector = get_detector(name, **kwargs)
            except ImportError as e:
                print(f"skipping {name}: {e}", file=sys.stderr)
                continue
            detector.detect([np.zeros((250, 250, 3), np.uint8)])  # trace / warm up
            key = f"{name}@{detector.working_size}"
            if name == "mtcnn":
                limit = min(filter(None, [args.limit, args.mtcnn_limit]), default=0)
                detectors[key] = (detector, limit, args.mtcnn_latency_photos)
            else:
                detectors[key] = (detector, args.limit, args.latency_photos)

    rows = []
    for dataset, pattern in DATASETS.items():
        all_paths = photo_paths(args.data, pattern, 0)
        if not all_paths:
            print(f"skipping {dataset}: no photos under {args.data}", file=sys.stderr)
            continue
        timing_images = [load_image(p) for p in photo_paths(args.data, pattern, args.latency_photos)]
        single, batched = interleaved_timings({k: (d, n) for k, (d, _, n) in detectors.items()}, timing_images,
                                              args.batch, args.rounds)
        for key, (detector, limit, _) in detectors.items():
            rates = detection_rates(detector, photo_paths(args.data, pattern, limit), args.batch)
            row = {"detector": detector.name, "working_size": detector.working_size, "dataset": dataset,
                   "score_threshold": detector.default_score_threshold, "min_face": 20, **rates,
                   "ms_batch1": statistics.median(single[key]),
                   "ms_batch1_p10": float(np.percentile(single[key], 10)),
                   "ms_batched": statistics.median(batched[key]), "batch": args.batch,
                   "timed_photos": len(single[key]) // args.rounds, "rounds": args.rounds}
            rows.append(row)
            print(f"{detector.name:10s} {row['working_size']:5d} {dataset:8s} {row['photos']:6d} photos  "
                  f"found {row['found']:7.2%}  centre {row['centre']:7.2%}  batch-1 {row['ms_batch1']:6.2f} ms "
                  f"(p10 {row['ms_batch1_p10']:5.2f})  batched {row['ms_batched']:6.2f} ms/photo", flush=True)

    print()
    print("| detector | working size | data set | photos | found | centre face | faces/photo "
          "| ms batch 1 (median, p10) "
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
            "note": "times exclude JPEG decoding and were taken in interleaved rounds; the machine's 2 cores were "
                    "shared with other jobs (load average about 4), so an idle machine is faster",
            "results": rows})


if __name__ == "__main__":
    main()
