"""What BatchNorm folding, XLA (``jit_compile=True``) and oneDNN change for a shipped model on this CPU.

Run from the repository root (``python benchmarks/fold_xla.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

For one model, a cached ``tf.function`` forward pass of: the model as shipped, its ``fold_batch_norm``
copy, and each with ``jit_compile=True``; batch-1 latency and batch-``--batch`` throughput (medians
of interleaved rounds, so background load hits every variant alike), the max abs output difference
from the shipped model, and a 2048³ SGEMM peak measured in the same run. Whether oneDNN is active is
read from TensorFlow; ``--child`` reruns the same measurement with ``TF_ENABLE_ONEDNN_OPTS=0`` in a
subprocess for comparison. Prints a table and writes JSON.

    python benchmarks/fold_xla.py --out benchmarks/results/fold_xla.json
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def onednn_enabled() -> bool:
    """True when TensorFlow runs its oneDNN kernels (built in, and not turned off by the environment)."""
    from tensorflow.python.util import _pywrap_util_port
    built = _pywrap_util_port.IsMklEnabled()
    return bool(built) and os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") not in ("0", "false", "False")


def measure(name, batch, rounds):
    import numpy as np
    import tensorflow as tf

    import facezoo
    from facezoo.images import load_image
    from facezoo.optimize import fold_batch_norm

    fm = facezoo.load(name, backend="keras")
    folded = fold_batch_norm(fm.model)
    h, w = fm.input_size
    real = fm.preprocess(load_image(facezoo.sample_image()))[None]
    x1 = tf.constant(real)
    xb = tf.constant(np.random.default_rng(0).uniform(-1, 1, (batch, h, w, 3)).astype("float32"))
    variants = {}
    for label, model in (("shipped", fm.model), ("folded", folded)):
        for jit in (False, True):
            variants[f"{label}{' + XLA' if jit else ''}"] = tf.function(
                lambda x, m=model: m(x, training=False), jit_compile=jit)

    def sync(out):
        return {k: v.numpy() for k, v in out.items()}

    ref = sync(variants["shipped"](x1))
    diffs = {k: max(float(np.abs(sync(f(x1))[o] - ref[o]).max()) for o in ref) for k, f in variants.items()}
    for f in variants.values():
        for _ in range(3):
            sync(f(x1)), sync(f(xb))
    t1 = {k: [] for k in variants}
    tb = {k: [] for k in variants}
    for _ in range(rounds):
        for k, f in variants.items():
            t0 = time.perf_counter()
            for _ in range(5):
                sync(f(x1))
            t1[k].append((time.perf_counter() - t0) / 5)
            t0 = time.perf_counter()
            sync(f(xb))
            tb[k].append(time.perf_counter() - t0)
    a = tf.random.uniform((2048, 2048))
    matmul = tf.function(lambda a: tf.matmul(a, a))
    matmul(a).numpy()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        matmul(a).numpy()
        times.append(time.perf_counter() - t0)
    peak = 2 * 2048 ** 3 / min(times) / 1e9
    flops = fm.card.architecture.get("flops", 0)
    rows = []
    for k in variants:
        ips = batch / statistics.median(tb[k])
        rows.append({"variant": k, "batch1_ms": statistics.median(t1[k]) * 1000, f"batch{batch}_img_per_s": ips,
                     "gflops": ips * flops / 1e9 if flops else None, "max_abs_diff": diffs[k]})
    return {"model": name, "onednn": onednn_enabled(), "sgemm_gflops": peak, "flops_per_image": flops,
            "batch": batch, "rows": rows}


def print_table(result):
    b = result["batch"]
    print(f"{result['model']}  oneDNN {'on' if result['onednn'] else 'off'}  SGEMM peak "
          f"{result['sgemm_gflops']:.0f} GFLOP/s (2048^3)")
    print(f"  {'variant':16s} {'batch-1 ms':>10s} {f'img/s @{b}':>11s} {'GFLOP/s':>8s} {'% peak':>7s} {'max |Δ|':>9s}")
    for r in result["rows"]:
        g = r["gflops"]
        print(f"  {r['variant']:16s} {r['batch1_ms']:10.2f} {r[f'batch{b}_img_per_s']:11.1f} "
              f"{g or 0:8.1f} {100 * (g or 0) / result['sgemm_gflops']:6.1f}% {r['max_abs_diff']:9.2e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="dmtl_celeba")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--no-child", action="store_true", help="skip the TF_ENABLE_ONEDNN_OPTS=0 run")
    p.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)
    result = measure(args.model, args.batch, args.rounds)
    if args.json_only:
        print(json.dumps(result))
        return 0
    results = [result]
    if not args.no_child:
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--model", args.model, "--batch",
                                str(args.batch), "--rounds", str(args.rounds), "--json-only"],
                               env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    for r in results:
        print_table(r)
    if args.out:
        import tensorflow as tf
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "processor": _cpu_name(), "tensorflow": tf.__version__,
                                   "load_average_1min": os.getloadavg()[0]},
                       "command": "python " + " ".join(sys.argv), "results": results}, f, indent=1)
    return 0


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
