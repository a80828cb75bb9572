"""Batch-1 latency of the face-verification embedder (``verify_face``) on each installed backend, side by side.

Per backend, interleaved over ``--rounds`` rounds with ``--pause`` seconds between backends (ONNX Runtime's and
OpenBLAS's threads spin after a call and slow whatever runs next): the network alone on one preprocessed face
(``FaceEmbedder.network``), one aligned uint8 crop through ``embed_crops`` (scaling + network), and one photo through
``embed`` (decode, RetinaFace, alignment, network), each as the card configures it (with its flip test, both
views of the face in one batch). Medians (p50) and p90 over ``--runs`` calls after warm-up; each
round's p50 is kept so the table prints the range. Writes JSON.

    python benchmarks/embedder.py --out benchmarks/results/embedder.json
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np


def timings(fn, runs: int, warmup: int = 10) -> list:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="verify_face")
    p.add_argument("--backends", default="keras,onnxruntime,openvino",
                   help="comma-separated; backends that are not installed are skipped (default: %(default)s)")
    p.add_argument("--runs", type=int, default=200, help="timed calls per measurement (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: %(default)s)")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between backends (default: %(default)s)")
    p.add_argument("--out", help="JSON file to write")
    args = p.parse_args(argv)
    if args.runs < 1 or args.rounds < 1 or args.pause < 0:
        p.error("--runs and --rounds must be >= 1 and --pause >= 0")
    if args.out and not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        p.error(f"--out {args.out}: its folder does not exist")

    import facezoo
    from facezoo.backends import installed
    from facezoo.images import load_image
    names = [b for b in args.backends.split(",") if b]
    unknown = [b for b in names if b not in facezoo.backends.BACKENDS]
    if unknown:
        p.error(f"unknown backend(s) {unknown}; choose from {', '.join(facezoo.backends.BACKENDS)}")
    models = {b: facezoo.load(args.model, backend=b) for b in names if installed(b)}
    photo = load_image(facezoo.sample_photo())
    first = next(iter(models.values()))
    face = first.embed_faces([photo])[1][0]
    aligned = first.align(photo, face)[None]
    rows = {b: {"network": [], "crop": [], "photo": []} for b in models}
    for _ in range(args.rounds):
        for b, m in models.items():
            x = m.normalize(aligned)
            for part, fn in (("network", lambda: m.network(x)), ("crop", lambda: m.embed_crops(aligned)),
                             ("photo", lambda: m.embed(photo, detect=True))):
                t = timings(fn, args.runs if part != "photo" else max(20, args.runs // 5))
                rows[b][part].append({"p50": float(np.median(t)), "p90": float(np.percentile(t, 90))})
            time.sleep(args.pause)
    reference = models.get("keras")
    same = {}
    if reference is not None:
        base = reference.embed_crops(aligned)
        same = {b: float(np.abs(m.embed_crops(aligned) - base).max()) for b, m in models.items()}
    flip = bool(getattr(first, "flip_test", False))
    print(f"{args.model}: batch-1 latency, ms (p50, range over {args.rounds} rounds; p90 of the last round)"
          + ("; flip test on (each face and its mirror image)" if flip else ""))
    print(f"{'backend':12} {'network':>22} {'crop':>22} {'photo (detect+align)':>24} {'max |diff| vs keras':>20}")
    for b, r in rows.items():
        cells = []
        for part in ("network", "crop", "photo"):
            p50 = [x["p50"] for x in r[part]]
            cells.append(f"{np.median(p50):6.2f} ({min(p50):.2f}-{max(p50):.2f}) p90 {r[part][-1]['p90']:.2f}")
        print(f"{b:12} {cells[0]:>22} {cells[1]:>22} {cells[2]:>24} {same.get(b, float('nan')):20.2g}")
    result = {"model": args.model, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "flip_test": flip, "runs": args.runs, "rounds": args.rounds, "pause_s": args.pause, "ms": rows,
              "max_abs_diff_vs_keras": same, "command": "python benchmarks/embedder.py " + " ".join(
                  argv if argv is not None else sys.argv[1:])}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
