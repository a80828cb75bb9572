"""Batch-1 inference latency of shipped models on this machine, measured side by side.

Run from the repository root (``python benchmarks/latency.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

For each model: ``model.predict`` (Keras, ~50 ms fixed cost per call), a cached ``tf.function``
(what ``facezoo.load(...).predict`` uses), and the full ``FaceModel.predict`` on an encoded JPEG
(decode + preprocess + network + decode of every head). Medians over ``--runs`` calls after warm-up;
also images/s at ``--batch`` with the cached function. Prints a table and writes JSON.

    python benchmarks/latency.py --out benchmarks/results/latency.json
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time


def median_ms(fn, runs, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", help="registered names (default: all shipped)")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    import facezoo

    names = args.models or facezoo.list_models(task="attributes")
    sample = facezoo.sample_image()
    rows = []
    for name in names:
        fm = facezoo.load(name, backend="keras")
        h, w = fm.input_size
        x1 = np.random.default_rng(0).uniform(-1, 1, (1, h, w, 3)).astype("float32")
        xb = np.random.default_rng(1).uniform(-1, 1, (args.batch, h, w, 3)).astype("float32")
        fn = tf.function(lambda x: fm.model(x, training=False))
        sync = lambda out: [v.numpy() for v in out.values()]  # noqa: E731
        row = {
            "model": name, "input": f"{h}x{w}", "params": fm.model.count_params(),
            "keras_predict_ms": median_ms(lambda: fm.model.predict(x1, verbose=0), max(10, args.runs // 5)),
            "tf_function_ms": median_ms(lambda: sync(fn(tf.constant(x1))), args.runs),
            "facezoo_predict_jpeg_ms": median_ms(lambda: fm.predict(sample), args.runs),
        }
        batch_ms = median_ms(lambda: sync(fn(tf.constant(xb))), max(5, args.runs // 5))
        row[f"tf_function_batch{args.batch}_img_per_s"] = args.batch / (batch_ms / 1000)
        rows.append(row)

    print(f"{'model':14s} {'input':8s} {'params':>10s} {'model.predict':>14s} {'tf.function':>12s} "
          f"{'predict(jpeg)':>14s} {f'img/s @{args.batch}':>10s}")
    for r in rows:
        print(f"{r['model']:14s} {r['input']:8s} {r['params']:10,d} {r['keras_predict_ms']:11.2f} ms "
              f"{r['tf_function_ms']:9.2f} ms {r['facezoo_predict_jpeg_ms']:11.2f} ms "
              f"{r[f'tf_function_batch{args.batch}_img_per_s']:10.1f}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "tensorflow": tf.__version__}, "results": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
