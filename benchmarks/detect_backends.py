"""Batch-1 RetinaFace detection on 250x250 photos per backend: does an exported graph reach <= 5 ms (issue #15)?

Run from the repository root (``python benchmarks/detect_backends.py --help``); photos are the staged LFW images
(``$FACEZOO_DATA/lfw`` or ``../shared/data/lfw``; 250x250 each), else the bundled photo resized to 250x250.

For every installed backend that runs the shipped detector (keras: the cached concrete function; onnxruntime,
litert, openvino: the exported graph with preprocessing inside) and its precisions (fp32, and bf16/float16 where
the backend and CPU run them): ``detect([photo])`` on an already decoded photo (resize to the 160-pixel working
size, the network, decoding and NMS) and the network call alone, p50/p90 over ``--runs`` calls, cycling through
``--photos`` photos, interleaved over ``--repeats`` rounds with pauses; faces found must agree with keras. Prints
a table (medians with min-max over the rounds) and writes JSON.

    python benchmarks/detect_backends.py --out benchmarks/results/detect_backends.json
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=100, help="calls per round (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--photos", type=int, default=20, help="distinct photos cycled through (default 20)")
    p.add_argument("--pause", type=float, default=1.0)
    p.add_argument("--out", help="write JSON here")
    args = p.parse_args(argv)

    import numpy as np

    import facezoo
    from facezoo import backends
    from facezoo.cli import quiet_tensorflow
    from facezoo.images import load_image
    quiet_tensorflow()
    lfw = os.path.join(os.environ.get("FACEZOO_DATA", os.path.join(REPO, "..", "shared", "data")), "lfw")
    files = sorted(os.path.join(d, f) for d, _s, fs in os.walk(lfw) for f in fs if f.endswith(".jpg"))
    if files:
        step = max(1, len(files) // args.photos)
        photos = [load_image(f) for f in files[::step][:args.photos]]
        source = f"{len(photos)} staged LFW photos"
    else:
        from PIL import Image
        photos = [np.asarray(Image.open(facezoo.sample_photo()).convert("RGB").resize((250, 250)))]
        source = "the bundled photo resized to 250x250"
    configs = []
    for b in backends.available_backends():
        for prec in ("fp32", "bf16", "float16"):
            if prec in backends.SUPPORTED[b] and not backends.precision_supported(b, prec):
                configs.append((b, prec))
    detectors = {}
    for b, prec in configs:
        try:
            detectors[(b, prec)] = facezoo.load("retinaface_mnet025", backend=b, precision=prec)
        except facezoo.errors.UserError as e:
            print(f"{b} {prec}: skipped ({e})", file=sys.stderr)
    canvases = {k: d.prepare([photos[0]])[0] for k, d in detectors.items()}
    for d in detectors.values():
        for image in photos[:5]:
            d.detect([image])
    reference = detectors.get(("keras", "fp32"))
    agree = {}
    for k, d in detectors.items():
        if reference is not None:
            same = [len(a) == len(b) for a, b in ((reference.detect([im])[0], d.detect([im])[0]) for im in photos)]
            agree[k] = sum(same) / len(same)
    rounds = {k: {"detect_p50": [], "detect_p90": [], "network_p50": []} for k in detectors}
    keys = list(detectors)
    for r in range(args.repeats):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            d = detectors[k]
            times = []
            for i in range(args.runs):
                image = photos[i % len(photos)]
                t0 = time.perf_counter()
                d.detect([image])
                times.append(time.perf_counter() - t0)
            net = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                d.raw_outputs(canvases[k])
                net.append(time.perf_counter() - t0)
            rounds[k]["detect_p50"].append(1000 * float(np.percentile(times, 50)))
            rounds[k]["detect_p90"].append(1000 * float(np.percentile(times, 90)))
            rounds[k]["network_p50"].append(1000 * float(np.percentile(net, 50)))
            time.sleep(args.pause)
    rows = []
    print(f"RetinaFace-MobileNet0.25, batch 1, {source}, working size 160; medians of {args.repeats} rounds "
          f"(min-max); load average {os.getloadavg()} (shared machine)")
    print(f"{'backend':12s} {'prec':7s} {'detect p50 ms':>20s} {'detect p90 ms':>20s} {'network p50 ms':>20s} "
          f"{'<= 5 ms':>8s} {'faces = keras':>13s}")
    for k in keys:
        s = {m: {"median": statistics.median(v), "min": min(v), "max": max(v), "values": v}
             for m, v in rounds[k].items()}
        rows.append({"backend": k[0], "precision": k[1], **s, "faces_agree_with_keras": agree.get(k)})

        def cell(m):
            return f"{s[m]['median']:.2f} ({s[m]['min']:.2f}-{s[m]['max']:.2f})"
        hit = "yes" if s["detect_p50"]["median"] <= 5 else "no"
        print(f"{k[0]:12s} {k[1]:7s} {cell('detect_p50'):>20s} {cell('detect_p90'):>20s} {cell('network_p50'):>20s} "
              f"{hit:>8s} {agree.get(k, float('nan')):13.2%}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"photos": source, "runs": args.runs, "repeats": args.repeats, "results": rows,
                       "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "load_average": os.getloadavg()},
                       "command": "python benchmarks/detect_backends.py " + " ".join(argv or sys.argv[1:])},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
