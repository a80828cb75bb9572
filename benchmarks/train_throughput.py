"""Training throughput of facezoo's trainer: 1 worker against N workers on loopback, same global batch.

Run from the repository root (``python benchmarks/train_throughput.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

Each configuration trains a DMTL ResNet-18 on synthetic JPEG faces through the real input path
(``from_records``: decode, cache, shuffle, augment, batch, prefetch) and measures, after warm-up:

* ``img/s``: global batch / median wall time of a training step (``Trainer._train_step``, which
  takes its batch from the input pipeline inside the step);
* ``compute``: median step time on a small cached set of batches — the step without input work;
* ``input wait``: ``1 - compute / step``, the share of a step spent waiting for (or competing
  with) the input pipeline;
* ``pipeline img/s``: the input pipeline alone (``next(iterator)`` with no training);
* ``GFLOP/s``: 3 x forward FLOPs per image (convolutions and dense layers) x img/s, and its share of
  a float32 matrix-multiply peak measured in the same run.

N workers run under ``python -m facezoo.train.launch`` (``MultiWorkerMirroredStrategy``), each with
``cores // N`` TensorFlow threads; with one worker per host a CPU cluster would use them all. On a
2-core machine expect no speed-up: both workers share the same two cores and add all-reduces.

Usage::

    python benchmarks/train_throughput.py --out bench_train.json
    python benchmarks/train_throughput.py --workers 1,2 --steps 30 --input-size 64 --width 0.25
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matrix product with TensorFlow on this machine."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def write_images(folder: pathlib.Path, count: int, size: int):
    """Writes ``count`` random-texture JPEG "faces" of ``size`` px and ``labels.json`` (name -> gender)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    labels = {}
    for i in range(count):
        name = f"{i:05d}.jpg"
        base = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
        Image.fromarray(base).resize((size, size), Image.BILINEAR).save(folder / name, quality=90)
        labels[name] = int(rng.integers(0, 2))
    (folder / "labels.json").write_text(json.dumps(labels))


def run_worker(args):
    """One process of a configuration: trains, times, and (on the chief) writes ``--result``."""
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from facezoo.attributes import GENDER_CSV
    from facezoo.data.augment import DEFAULT_AUGMENT
    from facezoo.data.pipeline import from_records
    from facezoo.data.records import FaceRecord
    from facezoo.models.dmtl import DmtlConfig, dmtl
    from facezoo.models.flops import count_macs
    from facezoo.tasks.dmtl import DmtlTask, for_model
    from facezoo.train.config import TrainConfig
    from facezoo.train.loop import Trainer
    from facezoo.train.strategy import choose_strategy, is_chief

    strategy = choose_strategy()
    folder = pathlib.Path(args.images)
    labels = json.loads((folder / "labels.json").read_text())
    records = [FaceRecord(str(folder / name), {"gender": g}) for name, g in labels.items()]
    size = (args.input_size, args.input_size)
    config = DmtlConfig(backbone="resnet18", input_size=size, width=args.width, heads=GENDER_CSV)
    data = from_records(records, GENDER_CSV, image_size=size, batch_size=args.batch_size, training=True,
                        augment=DEFAULT_AUGMENT, seed=0)
    train = for_model(data.repeat(), GENDER_CSV.name, config)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(DmtlTask(lambda: dmtl(config)), train, TrainConfig(steps_per_epoch=10 ** 6), out,
                          global_batch=args.batch_size, strategy=strategy)
        iterator = iter(trainer.train_data)

        def step_times(it, n):
            times = []
            for _ in range(n):
                t = time.perf_counter()
                float(trainer._train_step(it)["loss"])
                times.append(time.perf_counter() - t)
            return times

        step_times(iterator, args.warmup)
        real = step_times(iterator, args.steps)
        cached = iter(strategy.experimental_distribute_dataset(train.take(4).cache().repeat()))
        step_times(cached, args.warmup)
        compute = step_times(cached, args.steps)
        pipeline_iterator = iter(train)
        next(pipeline_iterator)
        t = time.perf_counter()
        for _ in range(args.steps):
            next(pipeline_iterator)
        pipeline_seconds = time.perf_counter() - t
        flops = 2 * count_macs(trainer.model)
    if is_chief():
        step, step_compute = statistics.median(real), statistics.median(compute)
        result = {"workers": args.workers_n, "replicas": strategy.num_replicas_in_sync, "threads": args.threads,
                  "step_s": step, "step_p90_s": float(np.percentile(real, 90)), "compute_step_s": step_compute,
                  "images_per_s": args.batch_size / step, "input_wait_share": max(0.0, 1 - step_compute / step),
                  "pipeline_images_per_s": args.batch_size * args.steps / pipeline_seconds,
                  "forward_gflop_per_image": flops / 1e9,
                  "train_gflops": 3 * flops * args.batch_size / step / 1e9}
        pathlib.Path(args.result).write_text(json.dumps(result, indent=1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    p.add_argument("--batch-size", type=int, default=32, help="global batch, the same for every count (default 32)")
    p.add_argument("--input-size", type=int, default=64, help="model input side (default 64)")
    p.add_argument("--width", type=float, default=0.25, help="ResNet-18 width multiplier (default 0.25)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per measurement (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first, tracing included (default 3)")
    p.add_argument("--images-count", type=int, default=512, help="synthetic images (default 512)")
    p.add_argument("--image-px", type=int, default=96, help="side of the synthetic JPEGs (default 96)")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--worker-run", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--workers-n", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--images", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker_run:
        run_worker(args)
        return 0
    counts = [int(c) for c in args.workers.split(",")]
    if any(c < 1 for c in counts):
        p.error(f"--workers must list positive counts, got {args.workers}")
    cores = os.cpu_count() or 1
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        images = pathlib.Path(tmp) / "images"
        images.mkdir()
        write_images(images, args.images_count, args.image_px)
        for n in counts:
            result_path = pathlib.Path(tmp) / f"result-{n}.json"
            worker = [sys.executable, str(pathlib.Path(__file__).resolve()), "--worker-run", "--workers-n", str(n),
                      "--threads", str(max(1, cores // n)), "--images", str(images), "--result", str(result_path),
                      "--batch-size", str(args.batch_size), "--input-size", str(args.input_size),
                      "--width", str(args.width), "--steps", str(args.steps), "--warmup", str(args.warmup)]
            command = worker if n == 1 else [sys.executable, "-m", "facezoo.train.launch", "--workers", str(n),
                                             "--", *worker]
            print(f"measuring {n} worker(s) ...", flush=True)
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stdout[-3000:] + done.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"the {n}-worker run failed with status {done.returncode}")
            results.append(json.loads(result_path.read_text()))
    peak = matmul_peak_gflops()
    single = next((r["images_per_s"] for r in results if r["workers"] == 1), None)
    print(f"{'workers':>7} {'img/s':>8} {'step ms':>8} {'compute ms':>10} {'input wait':>10} "
          f"{'pipeline img/s':>14} {'GFLOP/s':>8} {'% peak':>6} {'efficiency':>10}")
    for r in results:
        r["share_of_matmul_peak"] = r["train_gflops"] / peak
        # Scaling efficiency: N workers' img/s over N times one worker's.
        r["efficiency"] = None if single is None else r["images_per_s"] / (single * r["workers"])
        efficiency = "" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        print(f"{r['workers']:>7} {r['images_per_s']:>8.1f} {1000 * r['step_s']:>8.1f} "
              f"{1000 * r['compute_step_s']:>10.1f} {100 * r['input_wait_share']:>9.1f}% "
              f"{r['pipeline_images_per_s']:>14.1f} {r['train_gflops']:>8.1f} "
              f"{100 * r['share_of_matmul_peak']:>5.1f}% {efficiency:>10}")
    report = {"settings": {k: v for k, v in vars(args).items() if k in ("workers", "batch_size", "input_size", "width",
                                                                        "steps", "warmup", "images_count")},
              "machine": {"cpu_count": cores, "platform": platform.platform(), "load_average": os.getloadavg()},
              "matmul_peak_gflops": peak, "results": results}
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(report, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
