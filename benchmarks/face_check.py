"""``predict``'s face check on crops: how often it finds the face, and its cost, per detector working size.

Run from the repository root (``python benchmarks/face_check.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

``FaceModel.predict`` runs the shipped RetinaFace on every crop it describes and reports ``face_score`` and
``face_found`` (a chart or a landscape gets answers marked as meaningless). A crop's face fills most of it,
so the detector can search a smaller canvas than the photo path's 160 working pixels. For each working size
this measures, on real crops (CelebA's aligned 89x109 images, UTKFace's 200x200 crops, FER-2013's 48x48
grey faces) and on images without a face (charts, gradients, noise, text-like stripes, generated here), the
share with a face found (crops smaller than the working size kept or enlarged to it) and the milliseconds
per crop of the face check alone (decoded arrays, batches of ``--batch``; median of ``--rounds`` interleaved
rounds). Prints a table and writes JSON.

    python benchmarks/face_check.py --out benchmarks/results/face_check.json
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from detect import DATA_ROOT, photo_paths  # noqa: E402  (the detector benchmark's data root and sampling)

CROPS = {
    "celeba": "celeba/img_align_celeba/*.jpg",
    "utkface": "utkface/UTKFace/*.jpg",
    "fer2013": "fer2013/test/*/*.jpg",
}


def not_faces(n, seed=0):
    """Images without a face: bar charts, gradients, noise, stripes, flat colours (uint8 RGB, 96-200 px)."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = int(rng.integers(96, 201)), int(rng.integers(96, 201))
        kind = i % 5
        if kind == 0:  # bar chart
            image = Image.new("RGB", (w, h), "white")
            draw = ImageDraw.Draw(image)
            bars = int(rng.integers(4, 12))
            for b in range(bars):
                top = int(rng.integers(5, h - 5))
                draw.rectangle([b * w // bars + 2, top, (b + 1) * w // bars - 2, h - 2],
                               fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
            array = np.asarray(image)
        elif kind == 1:  # gradient
            ramp = np.linspace(0, 255, w)[None, :, None] * rng.uniform(0.2, 1, 3)
            array = np.broadcast_to(ramp, (h, w, 3)).astype(np.uint8)
        elif kind == 2:  # noise
            array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif kind == 3:  # stripes
            period = int(rng.integers(3, 20))
            stripes = ((np.arange(h)[:, None] // period) % 2 * 255).astype(np.uint8)
            array = np.repeat(np.broadcast_to(stripes, (h, w))[..., None], 3, axis=2)
        else:  # flat colour
            array = np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
        out.append(np.ascontiguousarray(array))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="64,96,128,160", help="comma list of working sizes (default 64,96,128,160)")
    p.add_argument("--limit", type=int, default=1000, help="crops per data set (default 1000)")
    p.add_argument("--batch", type=int, default=32, help="crops per detector call (default 32)")
    p.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    p.add_argument("--backend", default=None, help="detector backend (default: facezoo's default)")
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        p.error(f"--sizes must be a comma list of integers, got {args.sizes!r}")
    if not os.path.isdir(DATA_ROOT):
        p.error(f"{DATA_ROOT} is not a directory (set FACEZOO_DATA)")

    from facezoo.images import load_image
    from facezoo.inference.runtime import FACE_CHECK_SIZE
    from facezoo.zoo import load
    sets = {}
    for name, pattern in CROPS.items():
        paths = photo_paths(DATA_ROOT, pattern, args.limit)
        if paths:
            sets[name] = [load_image(path) for path in paths]
    sets["not_face"] = not_faces(min(args.limit, 500))
    base = load("retinaface_mnet025", backend=args.backend)
    detectors = {(size, up): base.with_working_size(size, upscale=up) for size in sizes for up in (False, True)}

    found = {}
    for key, detector in detectors.items():
        for name, images in sets.items():
            faces = []
            for start in range(0, len(images), args.batch):
                faces += detector.detect(images[start:start + args.batch], min_face=0)
            found[(key, name)] = sum(bool(f) for f in faces) / len(images)
    timing_images = sets.get("celeba", next(iter(sets.values())))[:256]
    times = {key: [] for key in detectors}
    for _ in range(args.rounds):
        for key, detector in detectors.items():
            t0 = time.perf_counter()
            for start in range(0, len(timing_images), args.batch):
                detector.detect(timing_images[start:start + args.batch], min_face=0)
            times[key].append((time.perf_counter() - t0) / len(timing_images) * 1000)

    rows = []
    for key in detectors:
        row = {"working_size": key[0], "upscale": key[1], "ms_per_crop": statistics.median(times[key]),
               "ms_range": [min(times[key]), max(times[key])],
               "found": {name: found[(key, name)] for name in sets}}
        rows.append(row)
    names = list(sets)
    print(f"face check on crops ({base!r}; default working size {FACE_CHECK_SIZE}); ms per crop on "
          f"{len(timing_images)} CelebA crops, batches of {args.batch}")
    print("| working size | small crops enlarged | ms / crop | "
          + " | ".join(f"found: {n} ({len(sets[n])})" for n in names) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
    for row in rows:
        print(f"| {row['working_size']} | {'yes' if row['upscale'] else 'no'} | {row['ms_per_crop']:.2f} | "
              + " | ".join(f"{100 * row['found'][n]:.2f}%" for n in names) + " |")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"command": "python benchmarks/face_check.py " + " ".join(argv or sys.argv[1:]),
                       "detector": repr(base), "default": FACE_CHECK_SIZE, "batch": args.batch,
                       "sizes": rows, "images": {n: len(v) for n, v in sets.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
