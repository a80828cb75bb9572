"""Throughput of facezoo's tf.data pipeline against a per-file PIL loader (PyTorch-Dataset style).

Run from the repository root (``python benchmarks/data_pipeline.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

Both loaders read the same JPEG files and produce the same batches: float32 (B, S, S, 3) in
[-1, 1], centre-cropped to the aspect and resized with antialiasing, no augmentation. The
baseline is the usual ``Dataset.__getitem__`` (open with PIL, crop, resize, scale) iterated by a
DataLoader-like loop that stacks batches — in-process (``num_workers=0``) and, with
``--loader-workers N``, in a process pool that hands out whole batches like DataLoader workers.
facezoo's pipeline reads TFRecords written by ``facezoo.data.tfrecord.convert`` (original
bytes, timed separately); its first epoch decodes, later epochs come from the uint8 cache.

Usage::

    python benchmarks/data_pipeline.py --out bench.json              # shared CelebA subset
    python benchmarks/data_pipeline.py --synthetic 4000 --out b.json  # when the data is absent
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_DATA = pathlib.Path(os.environ.get("FACEZOO_DATA", REPO.parent / "shared" / "data")) / "celeba"


def load_pil(path: str, size: int) -> np.ndarray:
    """The baseline ``__getitem__``: decode, centre-crop to square, antialiased resize, scale."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.resize((size, size), Image.BILINEAR, box=(left, top, left + side, top + side))
        return np.asarray(im, np.float32) / 127.5 - 1.0


def _load_batch(job):
    paths, size = job
    return np.stack([load_pil(p, size) for p in paths])


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def timed(fn) -> tuple[float, float]:
    """``(wall seconds, CPU seconds)`` of ``fn()``."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    fn()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def baseline_epoch(paths, size: int, batch_size: int, workers: int):
    """One pass over ``paths`` in batches, in-process (``workers=0``) or in a process pool."""
    jobs = [(paths[i:i + batch_size], size) for i in range(0, len(paths), batch_size)]
    if workers == 0:
        for job in jobs:
            _load_batch(job)
        return
    pool = Pool(workers)
    for _ in pool.imap(_load_batch, jobs):
        pass
    pool.close()
    pool.join()


def synthetic_records(folder: pathlib.Path, count: int):
    """``count`` random 89x109 JPEGs (the shared CelebA size) as FaceRecords."""
    from facezoo.data.records import FaceRecord
    rng = np.random.default_rng(0)
    records = []
    for i in range(count):
        path = folder / f"{i:06d}.jpg"
        Image.fromarray(rng.integers(0, 256, (109, 89, 3), dtype=np.uint8)).save(path, quality=90)
        records.append(FaceRecord(str(path), {"Male": int(i % 2)}, source=path.name))
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="CelebA root (default: %(default)s)")
    p.add_argument("--synthetic", type=int, metavar="N", help="use N synthetic images instead of --data")
    p.add_argument("--limit", type=int, help="use only the first N images")
    p.add_argument("--image-size", type=int, default=112, help="output side in pixels (default: 112)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=4,
                   help="1 uncached facezoo epoch, then N-1 rounds of every loader (default: 4)")
    p.add_argument("--loader-workers", type=int, default=2,
                   help="also time the PIL loader with this many worker processes (0: skip; default: 2)")
    p.add_argument("--out", help="write the results as JSON to this file")
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (one uncached epoch, then at least one round)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from facezoo.attributes import CELEBA_40
    from facezoo.data.celeba import CelebaReader
    from facezoo.data.pipeline import pipeline
    from facezoo.data.tfrecord import convert

    work = tempfile.TemporaryDirectory(prefix="facezoo-bench-")
    tmp = pathlib.Path(work.name)
    if args.synthetic:
        (tmp / "images").mkdir()
        records, source = synthetic_records(tmp / "images", args.synthetic), f"synthetic ({args.synthetic})"
    else:
        if not os.path.isdir(args.data):
            p.error(f"{args.data} is absent; pass --data DIR or --synthetic N")
        records, source = list(CelebaReader(args.data, partition_file=False).records()), args.data
    records = records[: args.limit] if args.limit else records
    for r in records:
        r.split = "train"
    paths = [r.image for r in records]
    n, size = len(records), args.image_size

    start = time.perf_counter()
    convert(records, CELEBA_40, tmp / "tfrecords", shards=8, progress=False)
    convert_s = time.perf_counter() - start

    ds = pipeline(tmp / "tfrecords", "train", image_size=(size, size), batch_size=args.batch_size,
                  training=True, shuffle_buffer=2048, drop_remainder=False)

    def facezoo_epoch():
        seen = sum(int(images.shape[0]) for images, _, _ in ds)
        assert seen == n, (seen, n)

    # The machine may be shared: loaders take turns epoch by epoch so that load changes hit all
    # of them alike, and CPU seconds per image (independent of load) are reported beside wall time.
    loaders = {"facezoo tf.data, cached": facezoo_epoch}
    for workers in sorted({0, args.loader_workers}):
        loaders[f"PIL per file, {workers} workers"] = (
            lambda w=workers: baseline_epoch(paths, size, args.batch_size, w))
    first = timed(facezoo_epoch)
    times = {name: [] for name in loaders}
    for _ in range(args.epochs - 1):
        for name, fn in loaders.items():
            times[name].append(timed(fn))

    def row(name, epochs, runs):
        wall = statistics.median(t[0] for t in runs)
        cpu = statistics.median(t[1] for t in runs)
        return {"loader": name, "epochs": epochs, "seconds": wall, "images_per_s": n / wall,
                "cpu_ms_per_image": 1000 * cpu / n}

    rows = [row("facezoo tf.data, first epoch", "1 (decode + cache)", [first])]
    rows += [row(name, f"median of {len(runs)}", runs) for name, runs in times.items()]
    cached, baselines = rows[1], rows[2:]
    best = max(baselines, key=lambda r: r["images_per_s"])
    result = {
        "source": source, "images": n, "image_size": size, "batch_size": args.batch_size,
        "convert_seconds": convert_s, "rows": rows,
        "speedup_cached_vs_best_baseline": cached["images_per_s"] / best["images_per_s"],
        "speedup_first_epoch_vs_best_baseline": rows[0]["images_per_s"] / best["images_per_s"],
        "cpu_ratio_baseline0_vs_cached": baselines[0]["cpu_ms_per_image"] / cached["cpu_ms_per_image"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},
    }
    print(f"{n} images from {source} -> {size}x{size}, batch {args.batch_size} "
          f"(TFRecord conversion: {convert_s:.1f} s, once)")
    print(f"{'loader':30s} {'epochs':20s} {'seconds':>8s} {'images/s':>9s} {'CPU ms/img':>10s}")
    for r in rows:
        print(f"{r['loader']:30s} {r['epochs']:20s} {r['seconds']:8.2f} {r['images_per_s']:9.0f} "
              f"{r['cpu_ms_per_image']:10.3f}")
    print(f"cached epochs vs best PIL loader ({best['loader']}): {result['speedup_cached_vs_best_baseline']:.1f}x "
          f"images/s; first epoch: {result['speedup_first_epoch_vs_best_baseline']:.1f}x; CPU per image, "
          f"PIL in-process / cached: {result['cpu_ratio_baseline0_vs_cached']:.1f}x "
          f"(load average {result['machine']['load_average'][0]:.1f} on {os.cpu_count()} CPUs)")
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
