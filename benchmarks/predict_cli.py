"""``facezoo predict`` on a folder of crops, end to end: fresh processes, one per configuration and round.

Run from the repository root (``python benchmarks/predict_cli.py --help``); data sets are read from
``$FACEZOO_DATA`` or ``../shared/data``.

Issue #16 asks for ``facezoo predict`` on 500 crops in at most 1 s, everything included: Python start, ``import
facezoo``, loading the graphs, decoding every JPEG, preprocessing, the network, the face check of each crop (unless
``--no-face-check``) and writing the JSON. This copies ``--crops`` CelebA crops (spread over the staged set) into a
temporary folder once, then runs ``facezoo predict FOLDER --json OUT [options]`` as a fresh process for every
configuration in each of ``--rounds`` rounds (configurations rotate between rounds; ``--pause`` seconds of rest
between processes), after one unmeasured warm-up process per configuration (it builds any graph that is not cached
yet, e.g. LiteRT's, and warms the file cache). Wall time of the whole process, median and range; every process
must write ``--crops`` results with no error. Prints a table and writes JSON.

    python benchmarks/predict_cli.py --out benchmarks/results/predict_cli.json
    python benchmarks/predict_cli.py --config= --config="--backend litert --precision int8"
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from detect import DATA_ROOT, photo_paths  # noqa: E402  (the detector benchmark's data root and sampling)

CONFIGS = ("", "--no-face-check", "--precision int8", "--precision int8 --no-face-check",
           "--backend litert", "--backend litert --precision int8", "--backend litert --precision int8 --no-face-check")


def facezoo_command():
    """``facezoo`` beside this interpreter (the venv's console script), else ``python -m facezoo.cli``."""
    script = os.path.join(os.path.dirname(sys.executable), "facezoo")
    return [script] if os.path.isfile(script) else [sys.executable, "-m", "facezoo.cli"]


def run_once(folder, options, out_json, expected):
    command = facezoo_command() + ["predict", folder, "--json", out_json] + options.split()
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1][:300]}
    with open(out_json) as f:
        results = json.load(f)
    rows = results if isinstance(results, list) else []  # `facezoo predict --json` writes one row per image
    errors = sum(1 for r in rows if isinstance(r, dict) and r.get("error"))
    if len(rows) != expected or errors:
        return {"error": f"{len(rows)} results, {errors} errors (expected {expected})"}
    return {"wall_s": wall}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crops", type=int, default=500, help="CelebA crops (default 500)")
    p.add_argument("--config", action="append", dest="configs",
                   help="option string of facezoo predict for one configuration, written --config=OPTIONS "
                   "(repeatable; --config= is the default; default: the seven of CONFIGS)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between processes (default 1)")
    p.add_argument("--data-dir", default=DATA_ROOT, help="data root (default $FACEZOO_DATA or ../shared/data)")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    args.configs = args.configs or list(CONFIGS)
    if args.crops < 1 or args.rounds < 1:
        p.error("--crops and --rounds must be at least 1")
    paths = photo_paths(args.data_dir, "celeba/img_align_celeba/*.jpg", args.crops)
    if len(paths) < args.crops:
        p.error(f"{args.data_dir}: found {len(paths)} CelebA crops under celeba/img_align_celeba, need {args.crops}")
    from tqdm.auto import tqdm
    work = tempfile.mkdtemp(prefix="facezoo-predict-bench-")
    try:
        folder = os.path.join(work, "crops")
        os.makedirs(folder)
        for path in paths:
            shutil.copy(path, folder)
        out_json = os.path.join(work, "out.json")
        times = {c: [] for c in args.configs}
        errors = {}
        bar = tqdm(total=len(args.configs) * (args.rounds + 1), desc="predict", unit="process", file=sys.stderr)
        for config in args.configs:  # warm-up: builds uncached graphs, fills the page cache
            warm = run_once(folder, config, out_json, args.crops)
            if "error" in warm:
                errors[config] = warm["error"]
            bar.update()
        configs = [c for c in args.configs if c not in errors]
        for r in range(args.rounds):
            order = configs[r % max(1, len(configs)):] + configs[:r % max(1, len(configs))]
            for config in order:
                time.sleep(args.pause)
                got = run_once(folder, config, out_json, args.crops)
                if "error" in got:
                    errors[config] = got["error"]
                else:
                    times[config].append(got["wall_s"])
                bar.update()
            bar.update(len(args.configs) - len(order))
        bar.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    print(f"facezoo predict on {args.crops} CelebA crops, fresh process each, {args.rounds} rounds "
          f"({os.cpu_count()} CPUs, load average at end {os.getloadavg()[0]:.2f})")
    print(f"{'options':52s} {'median s':>9s} {'range':>13s}")
    for config in args.configs:
        label = config or "(default)"
        if config in errors or not times[config]:
            print(f"{label:52s} error: {errors.get(config, 'no run')}")
            rows.append({"options": config, "error": errors.get(config, "no run")})
            continue
        t = times[config]
        print(f"{label:52s} {statistics.median(t):9.2f} {min(t):6.2f}-{max(t):<6.2f}")
        rows.append({"options": config, "median_s": statistics.median(t), "min_s": min(t), "max_s": max(t),
                     "values_s": t, "per_crop_ms": 1000 * statistics.median(t) / args.crops})
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"crops": args.crops, "rounds": args.rounds, "pause_s": args.pause, "results": rows,
                       "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "processor": platform.processor() or platform.machine(),
                                   "load_average_end": os.getloadavg()},
                       "command": "python benchmarks/predict_cli.py " + " ".join(
                           argv if argv is not None else sys.argv[1:])}, f, indent=2)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
