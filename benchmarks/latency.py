"""Batch-1 inference latency of shipped models on this machine, measured side by side.

Run from the repository root (``python benchmarks/latency.py --help``).

For each model (default: every shipped attribute, expression and verification model): ``model.predict``
(Keras, ~50 ms fixed cost per call); a cached ``tf.function`` of the network as shipped; the same of its
BatchNorm-folded copy (``facezoo.optimize.fold_batch_norm``: what ``facezoo.load(..., backend="keras")``
runs by default); that copy with the flip test (each face and its mirror image: ``flip_test_network``, or the
mirror images in the same batch for verification models), which runs where the card's
``architecture["flip_test"]`` is on; and the whole ``predict`` on the bundled JPEG crop as the card runs it
(decode + preprocess + network + decoding of every head; ``embed`` for verification models). The
``tf.function`` variants are measured in
interleaved rounds (``--rounds``; medians of ``--runs`` calls each), so background load hits both alike, and
the table gives the median and range over rounds. Also: the largest output difference between the two, the
extra load time of folding, and images/s at ``--batch``. Prints a table and writes JSON.

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


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(name, args):
    import numpy as np
    import tensorflow as tf

    import facezoo
    from facezoo.optimize import flip_test_network, fold_batch_norm

    fm = facezoo.load(name, backend="keras", fold_batchnorm=False)
    model = fm.model
    t0 = time.perf_counter()
    folded = fold_batch_norm(model)
    fold_s = time.perf_counter() - t0
    shape = tuple(model.input_shape[1:])
    x1 = tf.constant(np.random.default_rng(0).uniform(-1, 1, (1, *shape)).astype("float32"))
    xb = tf.constant(np.random.default_rng(1).uniform(-1, 1, (args.batch, *shape)).astype("float32"))
    if fm.card.task == "verification":  # FaceEmbedder's flip test: the mirror images in the same batch
        flip = tf.function(lambda x: folded(tf.concat([x, tf.reverse(x, [2])], 0), training=False))
    else:  # FaceModel's: flip_test_network, both views in one graph
        flipped = flip_test_network(folded)
        flip = tf.function(lambda x: flipped(x, training=False))
    variants = {"shipped": tf.function(lambda x: model(x, training=False)),
                "folded": tf.function(lambda x: folded(x, training=False)), "folded+flip": flip}

    def sync(out):
        return [t.numpy() for t in tf.nest.flatten(out)]

    diff = max(float(np.abs(a - b).max()) for a, b in zip(sync(variants["shipped"](xb)), sync(variants["folded"](xb))))
    b1 = {k: [] for k in variants}
    bb = {k: [] for k in variants}
    for _ in range(args.rounds):
        for k, fn in variants.items():
            b1[k].append(median_ms(lambda: sync(fn(x1)), args.runs))
            bb[k].append(args.batch / (median_ms(lambda: sync(fn(xb)), max(3, args.runs // 10), warmup=1) / 1000))
    folded_rt = facezoo.load(name, backend="keras")  # the default runtime: folded
    sample = facezoo.sample_image()
    if fm.card.task == "verification":
        whole = median_ms(lambda: folded_rt.embed([sample], detect=False), args.runs)
    else:
        whole = median_ms(lambda: folded_rt.predict(sample), args.runs)
    return {
        "model": name, "task": fm.card.task, "input": "x".join(map(str, shape[:2])),
        "params": int(model.count_params()),
        "keras_predict_ms": median_ms(lambda: model.predict(x1.numpy(), verbose=0), 10, warmup=2),
        "tf_function_ms": spread(b1["shipped"]), "folded_tf_function_ms": spread(b1["folded"]),
        "folded_flip_tf_function_ms": spread(b1["folded+flip"]),
        "flip_test": bool(fm.card.architecture.get("flip_test", False)),
        f"tf_function_batch{args.batch}_img_per_s": spread(bb["shipped"]),
        f"folded_batch{args.batch}_img_per_s": spread(bb["folded"]),
        f"folded_flip_batch{args.batch}_img_per_s": spread(bb["folded+flip"]),
        "facezoo_call_ms": whole, "facezoo_call": "embed(jpeg)" if fm.card.task == "verification" else "predict(jpeg)",
        "fold_seconds": fold_s, "max_abs_diff": diff,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", help="registered names (default: every shipped attribute, expression "
                                               "and verification model)")
    p.add_argument("--runs", type=int, default=50, help="calls per median")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the two tf.function variants")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)

    import tensorflow as tf

    import facezoo

    names = args.models or [n for task in ("attributes", "expression", "verification")
                            for n in facezoo.list_models(task=task)]
    rows = []
    for name in names:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        rows.append(measure(name, args))

    def rng(d):
        return f"{d['median']:6.2f} ({d['min']:.2f}-{d['max']:.2f})"

    b = args.batch
    print(f"{'model':15s} {'input':8s} {'params':>10s} {'model.predict':>13s} {'tf.function (range)':>22s} "
          f"{'folded (range)':>22s} {'folded+flip (range)':>22s} {'facezoo call':>18s} "
          f"{f'img/s @{b} shipped/folded':>26s} "
          f"{'fold':>6s} {'diff':>8s}")
    for r in rows:
        print(f"{r['model']:15s} {r['input']:8s} {r['params']:10,d} {r['keras_predict_ms']:10.2f} ms "
              f"{rng(r['tf_function_ms']):>19s} ms {rng(r['folded_tf_function_ms']):>19s} ms "
              f"{rng(r['folded_flip_tf_function_ms']):>19s} ms "
              f"{r['facezoo_call_ms']:7.2f} ms {r['facezoo_call']:>8s} "
              f"{r[f'tf_function_batch{b}_img_per_s']['median']:12.0f} / "
              f"{r[f'folded_batch{b}_img_per_s']['median']:<6.0f}"
              f"      {r['fold_seconds']:5.2f}s {r['max_abs_diff']:8.1e}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "processor": _processor(), "tensorflow": tf.__version__,
                                   "load_average_1min": os.getloadavg()[0]},
                       "command": "python benchmarks/latency.py "
                                  + " ".join(argv if argv is not None else sys.argv[1:]),
                       "results": rows}, f, indent=1)
    return 0


def _processor():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
