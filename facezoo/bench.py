"""``facezoo bench NAME``: one model on every installed backend and precision, measured side by side in one run.

For each ``(backend, precision)`` the run loads the model through ``facezoo.load`` (graphs built into the cache
first, outside the timings) and measures:

* batch-1 latency p50 / p90 of the network call the runtime's ``predict`` makes (``runtime.logits`` on a
  preprocessed image: the Keras backend's cached ``tf.function``, the session / interpreter call of the others),
* batch-N images/s (``--batch``, 64) and the GFLOP/s it achieves (the card's FLOPs per image times images/s)
  against an SGEMM peak (the fastest float32 ``--gemm`` square matmul of numpy, ONNX Runtime and TensorFlow,
  whichever are installed; ``sgemm_gflops``) measured in the same repeat,
* size of the file it runs, cold start (a fresh Python process: ``import facezoo`` + ``load`` + the first
  ``predict`` of the bundled crop, graph already cached, face check off),
* accuracy change against keras fp32 (or the first configuration when Keras is not installed) on ``--sample``
  images of the model's validation split (read from ``--data-dir``; skipped when absent): decisions kept (every
  binary/nominal class and abstain flag), the largest probability change, and the mean accuracy over the
  binary and nominal heads against the labels.

Hygiene: ONNX Runtime and OpenBLAS threads spin after a call and slow whatever runs next, so configurations are
interleaved (the order rotates each repeat) with ``--pause`` seconds between them, each timing starts after a
few untimed calls (the pause parks thread pools, the previous configuration evicts the caches), the peak is
re-measured in every repeat, and every figure is reported as the median over ``--repeats`` (≥ 3) with its range.
The table goes to stdout, everything to ``--json``.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time

from facezoo.errors import UsageError, UserError


def _positive_int(text):
    from facezoo.train.recipe_args import positive_int
    return positive_int(text)


def add_bench_arguments(p):
    """The flags of ``facezoo bench`` (also ``benchmarks/inference.py``)."""
    p.add_argument("model", help="registered model name (facezoo list), task attributes or expression")
    p.add_argument("--backends", help="comma-separated (default: every installed one)")
    p.add_argument("--precisions", help="comma-separated (default: every one each backend and this CPU run)")
    p.add_argument("--repeats", type=_positive_int, default=3, help="interleaved rounds (default 3; ranges need 3)")
    p.add_argument("--runs", type=_positive_int, default=50, help="batch-1 calls per round (default 50)")
    p.add_argument("--batch", type=_positive_int, default=64, help="batch size of the throughput figure (64)")
    p.add_argument("--batch-runs", type=_positive_int, default=5, help="batch calls per round (default 5)")
    p.add_argument("--pause", type=float, default=1.0, help="seconds of rest between configurations (default 1)")
    p.add_argument("--gemm", type=_positive_int, default=1024, help="side of the SGEMM peak matmul (default 1024: "
                   "the best of 10 short calls is the least disturbed by other processes)")
    p.add_argument("--threads", type=_positive_int, help="threads of the exported runtimes (default: theirs)")
    p.add_argument("--data-dir", help="data root with the model's data set (default $FACEZOO_DATA or ../shared/data)")
    p.add_argument("--sample", type=_positive_int, default=300, help="validation images for the accuracy change")
    p.add_argument("--calibration", metavar="DIR", help="images for int8 graphs that are not shipped (default: "
                   "500 training images of the model's data set, when --data-dir has it)")
    p.add_argument("--no-cold-start", action="store_true", help="skip the fresh-process cold-start measurement")
    p.add_argument("--json", metavar="FILE", help="write everything as JSON")


def _configs(args):
    from facezoo import backends
    names = backends.available_backends() if not args.backends else [b.strip() for b in args.backends.split(",")]
    for b in names:
        backends.require(b)
    wanted = None if not args.precisions else [p.strip() for p in args.precisions.split(",")]
    for p in wanted or ():
        if p not in backends.PRECISIONS:
            raise UsageError(f"--precisions: unknown precision {p!r}; choose from {', '.join(backends.PRECISIONS)}")
    out, skipped = [], []
    for b in sorted(names, key=backends.BACKENDS.index):
        for p in backends.SUPPORTED[b]:
            if wanted and p not in wanted:
                continue
            reason = backends.precision_supported(b, p)
            (skipped.append({"backend": b, "precision": p, "skipped": reason}) if reason else out.append((b, p)))
    if not out:
        raise UsageError("no backend/precision left to measure (see --backends, --precisions)")
    return out, skipped


def _data_root(args):
    return args.data_dir or os.environ.get("FACEZOO_DATA") or os.path.join(os.getcwd(), "..", "shared", "data")


def _records(card, root, split, limit):
    """Up to ``limit`` records of ``split`` (spread evenly) or None when the data set or its reader is unavailable."""
    dataset = card.training_data.get("dataset")
    folder = os.path.join(root, dataset or "")
    try:  # data sets of several sources live at the data root itself
        from facezoo.data.datasets import DATASETS
        if dataset in DATASETS:
            folder = DATASETS[dataset].data_dir(root)
    except ImportError:  # a facezoo[lite] install: no TensorFlow, no data layer
        pass
    if not dataset or not os.path.isdir(folder):
        return None
    try:
        from facezoo.evaluation.report import evaluation_records
        records = evaluation_records(dataset, folder, split, card.training_data.get("val_percent", 20))
    except (ImportError, UserError):
        return None
    if len(records) > limit:
        step = len(records) / limit
        records = [records[int(i * step)] for i in range(limit)]
    return records


def sgemm_gflops(n: int, tries: int = 10) -> dict:
    """Best of ``tries`` float32 n x n matmuls per installed library, in GFLOP/s; ``peak`` is the fastest.

    numpy's BLAS is not always the CPU's best SGEMM (OpenBLAS may run AVX2 kernels on an AVX-512 CPU, where ONNX
    Runtime's MLAS and oneDNN run AVX-512), so the peak is the best of numpy, ONNX Runtime (a one-MatMul graph)
    and TensorFlow, whichever are installed: a runtime's share of it then stays a share.
    """
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    calls = {"numpy": lambda: a @ b}
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
        graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "sgemm",
                                  [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "ab"],
                                  [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = min(model.ir_version, 9)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        calls["onnxruntime"] = lambda: session.run(["c"], {"a": a, "b": b})
    except Exception:  # onnx not installed (the lite install) or an ORT without this opset: numpy only
        pass
    if "tensorflow" in sys.modules:  # only when already imported (the keras backend is measured)
        tf = sys.modules["tensorflow"]
        ta, tb = tf.constant(a), tf.constant(b)
        matmul = tf.function(lambda x, y: tf.matmul(x, y))
        calls["tensorflow"] = lambda: matmul(ta, tb).numpy()
    out = {}
    for name, call in calls.items():
        call()
        best = float("inf")
        for _ in range(tries):
            t0 = time.perf_counter()
            call()
            best = min(best, time.perf_counter() - t0)
        out[name] = 2 * n ** 3 / best / 1e9
    out["peak"] = max(out.values())
    return out


def _timed(fn, runs, warmup=5):
    """Seconds of each of ``runs`` calls, after ``warmup`` untimed ones: after the pause between configurations
    a runtime's thread pool has parked and another runtime's batch has evicted its weights from the caches (on 2
    AMD EPYC cores LiteRT fp32 batch 1 read 2.2-2.3 ms timed cold against 1.5-1.6 ms warm)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _cold_start(name, backend, precision, sample, threads) -> dict:
    code = ("import time; t0 = time.perf_counter(); import facezoo; t1 = time.perf_counter(); "
            f"m = facezoo.load({name!r}, backend={backend!r}, precision={precision!r}"
            f"{f', threads={threads}' if threads and backend != 'keras' else ''}); t2 = time.perf_counter(); "
            f"m.predict({sample!r}, check_face=False); t3 = time.perf_counter(); "
            "import sys, json; print(json.dumps({'import_s': t1 - t0, 'load_s': t2 - t1, 'first_predict_s': t3 - t2, "
            "'tensorflow_imported': 'tensorflow' in sys.modules}))")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    wall = time.perf_counter() - t0
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return {"process_s": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def _decisions(runtime, outputs):
    """Flat arrays: classes of binary/nominal heads, abstain flags, probabilities (as the runtime decodes them)."""
    import numpy as np

    from facezoo.decoding import decode_confidence, decode_head
    from facezoo.inference.runtime import confidence_name
    classes, probs, names = [], [], []
    for _ds, head, name in runtime.heads:
        attr = head.attribute
        dec = decode_head(attr, outputs[name])
        if attr.kind == "binary":
            classes.append((dec["positive"] >= runtime.card.thresholds.get(attr.name, 0.5)).astype(np.int64))
        else:
            classes.append(dec["index"])
        names.append(attr.name)
        probs.append(dec["probabilities"].reshape(len(dec["index"]), -1))
        conf = confidence_name(name)
        if conf in outputs:
            classes.append((decode_confidence(outputs[conf]) < runtime.card.abstain_below).astype(np.int64))
            names.append(attr.name + "_abstain")
    return names, np.stack(classes, 1), np.concatenate(probs, 1)


def _accuracy(runtime, records, ref):
    """Decisions and mean accuracy of ``runtime`` on ``records`` (preprocessed by the runtime itself)."""
    import numpy as np

    from facezoo.images import load_image
    batch = np.stack([runtime.preprocess(load_image(r.image)) for r in records])
    outputs = {}
    for start in range(0, len(batch), 64):
        for k, v in runtime.logits(batch[start:start + 64]).items():
            outputs.setdefault(k, []).append(np.asarray(v))
    outputs = {k: np.concatenate(v) for k, v in outputs.items()}
    names, classes, probs = _decisions(runtime, outputs)
    correct = []
    for j, name in enumerate(names):
        head = next((h.attribute for _d, h, _n in runtime.heads if h.attribute.name == name), None)
        if head is None or head.kind == "ordinal":
            continue
        known = [(i, r.labels[name]) for i, r in enumerate(records) if name in r.labels]
        if known:
            idx, labels = zip(*known)
            correct.append(float(np.mean(classes[list(idx), j] == np.asarray(labels))))
    row = {"classes": classes, "probs": probs, "names": names}
    if correct:
        row["mean_accuracy"] = float(np.mean(correct))
    return row


def run_bench(args) -> dict:
    """Runs the benchmark ``args`` describe (see ``add_bench_arguments``); prints the table, returns the results."""
    import numpy as np

    import facezoo
    from facezoo.cli import check_output_file
    if args.json:
        check_output_file(args.json, "--json")
    if args.pause < 0:
        raise UsageError(f"--pause must be >= 0 seconds, got {args.pause}")
    card = facezoo.model_card(args.model)
    if card.task not in ("attributes", "expression"):
        raise UsageError(f"facezoo bench measures attribute and expression models; {args.model} is a {card.task} "
                         "model")
    configs, skipped = _configs(args)
    root = _data_root(args)
    calibration = args.calibration
    if calibration is None:
        train = _records(card, root, "train", 500)
        calibration = [r.image for r in train] if train else None
    runtimes = {}
    for b, p in configs:
        t0 = time.perf_counter()
        try:
            options = {} if b == "keras" else {"calibration": calibration, "threads": args.threads}
            runtimes[(b, p)] = facezoo.load(args.model, backend=b, precision=p, **options)
        except UserError as e:
            skipped.append({"backend": b, "precision": p, "skipped": str(e)})
            continue
        print(f"loaded {b} {p} in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    if not runtimes:
        raise UsageError("no configuration could be loaded: " + "; ".join(s["skipped"] for s in skipped))
    flops = float(card.architecture.get("flops") or 0)
    sample = facezoo.sample_image()
    from facezoo.images import load_image
    image = load_image(sample)
    one = {k: rt.preprocess(image)[None] for k, rt in runtimes.items()}
    many = {k: np.repeat(x, args.batch, 0) for k, x in one.items()}
    for k, rt in runtimes.items():  # warm-up: first calls allocate and pick kernels
        for _ in range(3):
            rt.logits(one[k])
        rt.logits(many[k])
    keys = list(runtimes)
    rounds = {k: {"p50_ms": [], "p90_ms": [], "img_per_s": [], "gflops": [], "of_peak": [], "cold": []} for k in keys}
    peaks, peak_parts = [], []
    from tqdm.auto import tqdm
    bar = tqdm(total=args.repeats * len(keys), desc="bench", unit="config", file=sys.stderr)
    for r in range(args.repeats):
        parts = sgemm_gflops(args.gemm)
        peak = parts["peak"]
        peaks.append(peak)
        peak_parts.append(parts)
        time.sleep(args.pause)
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            rt = runtimes[k]
            lat = _timed(lambda: rt.logits(one[k]), args.runs)
            thr = _timed(lambda: rt.logits(many[k]), args.batch_runs)
            ips = args.batch / statistics.median(thr)
            row = rounds[k]
            row["p50_ms"].append(1000 * float(np.percentile(lat, 50)))
            row["p90_ms"].append(1000 * float(np.percentile(lat, 90)))
            row["img_per_s"].append(ips)
            row["gflops"].append(ips * flops / 1e9)
            row["of_peak"].append(ips * flops / 1e9 / peak)
            time.sleep(args.pause)
            if not args.no_cold_start:
                row["cold"].append(_cold_start(args.model, k[0], k[1], sample, args.threads))
                time.sleep(args.pause)
            bar.update()
    bar.close()
    reference = ("keras", "fp32") if ("keras", "fp32") in runtimes else keys[0]
    records = _records(card, root, "val", args.sample)
    accuracy = {}
    if records:
        ref = _accuracy(runtimes[reference], records, None)
        for k in keys:
            got = ref if k == reference else _accuracy(runtimes[k], records, ref)
            accuracy[k] = {"n_images": len(records),
                           "decisions_kept": float(np.mean(got["classes"] == ref["classes"])),
                           "max_prob_change": float(np.abs(got["probs"] - ref["probs"]).max()),
                           "mean_accuracy": got.get("mean_accuracy"),
                           "mean_accuracy_change_pt": (100 * (got["mean_accuracy"] - ref["mean_accuracy"])
                                                       if "mean_accuracy" in got else None)}
    results = []
    for k in keys:
        rt, row = runtimes[k], rounds[k]
        path = getattr(rt, "path", None) or os.path.join(facezoo.zoo.model_dir(args.model), card.weights_file)
        entry = {"backend": k[0], "precision": k[1], "file": path, "size_mb": os.path.getsize(path) / 1e6}
        for key in ("p50_ms", "p90_ms", "img_per_s", "gflops", "of_peak"):
            entry[key] = _summary(row[key])
        cold = [c for c in row["cold"] if "process_s" in c]
        if cold:
            entry["cold_start_s"] = _summary([c["process_s"] for c in cold])
            entry["cold_start_parts"] = cold
        elif row["cold"]:
            entry["cold_start_error"] = row["cold"][0].get("error")
        if k in accuracy:
            entry["accuracy"] = accuracy[k]
        results.append(entry)
    report = {"model": args.model, "flops_per_image": flops, "batch": args.batch, "repeats": args.repeats,
              "runs": args.runs, "sgemm_gflops": _summary(peaks), "sgemm_by_library": peak_parts,
              "gemm_side": args.gemm,
              "reference": f"{reference[0]} {reference[1]}", "results": results, "skipped": skipped,
              "machine": _machine(), "command": "facezoo bench " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["bench"]
              else " ".join(sys.argv)}
    print(format_table(report))
    if args.json:
        from facezoo.files import atomic_write_json
        atomic_write_json(args.json, report)
        print(f"wrote {args.json}", file=sys.stderr)
    return report


def _summary(values):
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def _machine():
    from facezoo import backends
    info = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_flags": sorted(f for f in backends.cpu_flags() if f in (*backends.BF16_FLAGS, *backends.VNNI_FLAGS,
                                                                          "avx512f", "avx2", "amx_tile")),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    import importlib.metadata as md
    for pkg in ("tensorflow-cpu", "tensorflow", "onnxruntime", "ai-edge-litert", "openvino"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return info


def _range(s, fmt):
    return f"{format(s['median'], fmt)} ({format(s['min'], fmt)}-{format(s['max'], fmt)})"


def format_table(report) -> str:
    """The report as a text table: medians over the repeats with (min-max) ranges."""
    peak = report["sgemm_gflops"]
    libraries = "/".join(k for k in report["sgemm_by_library"][0] if k != "peak")
    lines = [f"{report['model']}: {report['flops_per_image'] / 1e9:.3f} GFLOP/image; SGEMM peak "
             f"{_range(peak, '.0f')} GFLOP/s (best of {libraries} at {report['gemm_side']}^2, same round); medians of "
             f"{report['repeats']} interleaved rounds (min-max); accuracy vs {report['reference']}",
             f"load average {report['machine'].get('load_average')}: a shared, noisy machine makes these figures "
             "an upper bound on latency",
             f"{'backend':12s} {'prec':7s} {'b1 p50 ms':>20s} {'b1 p90 ms':>20s} "
             f"{'img/s @' + str(report['batch']):>22s} "
             f"{'GFLOP/s':>8s} {'% peak':>7s} {'MB':>6s} {'cold s':>16s} {'kept %':>7s} {'max dp':>7s} "
             f"{'Δ acc pt':>8s}"]
    for r in report["results"]:
        acc = r.get("accuracy") or {}
        cold = _range(r["cold_start_s"], ".2f") if "cold_start_s" in r else "-"
        kept = f"{100 * acc['decisions_kept']:.2f}" if acc else "-"
        dp = f"{acc['max_prob_change']:.4f}" if acc else "-"
        dacc = acc.get("mean_accuracy_change_pt")
        lines.append(f"{r['backend']:12s} {r['precision']:7s} {_range(r['p50_ms'], '.2f'):>20s} "
                     f"{_range(r['p90_ms'], '.2f'):>20s} {_range(r['img_per_s'], '.0f'):>22s} "
                     f"{r['gflops']['median']:8.1f} {100 * r['of_peak']['median']:6.1f}% {r['size_mb']:6.1f} "
                     f"{cold:>16s} {kept:>7s} {dp:>7s} {'-' if dacc is None else format(dacc, '+.3f'):>8s}")
    for s in report["skipped"]:
        lines.append(f"{s['backend']:12s} {s['precision']:7s} skipped: {s['skipped']}")
    return "\n".join(lines)
