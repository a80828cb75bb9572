"""The TensorFlow-free install: ``FACEZOO_INSTALL=lite pip install ".[lite]"`` into a fresh venv, its size and its
cold start (``--full-build``: the same without ``FACEZOO_INSTALL=lite``, which keeps the Keras weights in the wheel).

Run from the repository root (``python benchmarks/lite_install.py --help``). Creates ``--venv`` from scratch (the
folder is deleted first), installs this checkout with the ``lite`` extra (ONNX Runtime, numpy, Pillow, tqdm; no
TensorFlow, no Keras) from the configured package index, checks that neither TensorFlow nor Keras got in, then
measures:

* size: the whole venv, its site-packages by top-level folder, and facezoo's own files (the shipped ``.keras``
  weights, which the lite install does not use, are counted apart);
* cold start, ``--repeats`` fresh processes each (wall time from outside, process start to exit):
  ``import facezoo`` + ``load("dmtl_celeba")`` + one ``predict`` of the bundled crop (face check off), the same
  with the face check, ``facezoo predict`` and ``facezoo analyze`` of the bundled files;
* the answers of that venv against this process's Keras backend (when TensorFlow is installed here).

Prints a table, writes JSON. The machine is shared: cold starts include whatever else runs (load average saved).

    python benchmarks/lite_install.py --out benchmarks/results/lite_install.json
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def du_mb(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total / 1e6


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--venv", default="/tmp/facezoo-lite",
                   help="venv to create (deleted first; default /tmp/facezoo-lite)")
    p.add_argument("--repeats", type=int, default=5, help="fresh processes per cold-start figure (default 5)")
    p.add_argument("--keep", action="store_true", help="reuse an existing --venv instead of recreating it")
    p.add_argument("--full-build", action="store_true",
                   help="build the wheel without FACEZOO_INSTALL=lite (the Keras weights and plots stay in it)")
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")

    py = os.path.join(args.venv, "bin", "python")
    t0 = time.perf_counter()
    if not (args.keep and os.path.exists(py)):
        shutil.rmtree(args.venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", args.venv], check=True)
        env = dict(os.environ)
        env.pop("FACEZOO_INSTALL", None)
        if not args.full_build:
            env["FACEZOO_INSTALL"] = "lite"
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-cache-dir", f"{REPO}[lite]"], check=True, env=env)
    install_s = time.perf_counter() - t0
    listed = subprocess.run([py, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    packages = {d["name"].lower(): d["version"] for d in json.loads(listed.stdout)}
    forbidden = sorted(n for n in packages if n.startswith(("tensorflow", "keras", "tf-keras")))
    site = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    parts = sorted(((name, du_mb(os.path.join(site, name))) for name in os.listdir(site)
                    if os.path.isdir(os.path.join(site, name))), key=lambda x: -x[1])
    package = os.path.join(site, "facezoo")
    keras_files = sum(os.path.getsize(os.path.join(r, f)) for r, _d, fs in os.walk(package) for f in fs
                      if f.endswith(".keras")) / 1e6
    onnx_files = sum(os.path.getsize(os.path.join(r, f)) for r, _d, fs in os.walk(package) for f in fs
                     if f.endswith(".onnx")) / 1e6
    size = {"venv_mb": du_mb(args.venv), "site_packages_mb": du_mb(site), "facezoo_mb": du_mb(package),
            "facezoo_keras_weights_mb": keras_files, "facezoo_onnx_graphs_mb": onnx_files,
            "pip_setuptools_mb": sum(mb for n, mb in parts if n in ("pip", "setuptools", "_distutils_hack")),
            "largest": [{"name": n, "mb": round(mb, 1)} for n, mb in parts[:10]]}

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FACEZOO_BACKEND", "FACEZOO_PRECISION")}
    env["FACEZOO_CACHE"] = os.path.join(args.venv, "cache")
    facezoo_cli = os.path.join(args.venv, "bin", "facezoo")
    probe = ("import time, json, sys; t0 = time.perf_counter(); import facezoo; t1 = time.perf_counter(); "
             "m = facezoo.load('dmtl_celeba'); t2 = time.perf_counter(); r = m.predict(facezoo.sample_image(), "
             "check_face=CHECK); t3 = time.perf_counter(); print(json.dumps({'import_s': t1 - t0, 'load_s': t2 - t1, "
             "'predict_s': t3 - t2, 'backend': m.backend, 'tf': 'tensorflow' in sys.modules, 'result': r}))")
    commands = {
        "import + load + predict (no face check)": [py, "-c", probe.replace("CHECK", "False")],
        "import + load + predict (face check)": [py, "-c", probe.replace("CHECK", "True")],
        "facezoo predict crop": [facezoo_cli, "predict", "--jsonl", "SAMPLE"],
        "facezoo analyze photo": [facezoo_cli, "analyze", "--jsonl", "PHOTO"],
    }
    paths = json.loads(subprocess.run([py, "-c", "import facezoo, json; print(json.dumps([facezoo.sample_image(), "
                                       "facezoo.sample_photo()]))"], capture_output=True, text=True, env=env,
                                      check=True).stdout)
    cold, outputs = {}, {}
    for _ in range(args.repeats):  # interleaved, so a burst of load on the shared machine hits every figure
        for label, cmd in commands.items():
            cmd = [paths[0] if c == "SAMPLE" else paths[1] if c == "PHOTO" else c for c in cmd]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            if done.returncode:
                raise SystemExit(f"{label}: exit {done.returncode}: {done.stderr[-2000:]}")
            cold.setdefault(label, []).append(wall)
            outputs[label] = done.stdout.strip().splitlines()[-1]
    probe_out = json.loads(outputs["import + load + predict (no face check)"])
    parity = _parity(probe_out["result"])
    rows = {label: {"median_s": statistics.median(v), "min_s": min(v), "max_s": max(v), "values_s": v}
            for label, v in cold.items()}
    report = {"venv": args.venv, "install_s": install_s, "forbidden_packages": forbidden, "packages": packages,
              "size": size, "cold_start": rows, "probe": {k: v for k, v in probe_out.items() if k != "result"},
              "parity_with_keras": parity,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
              "command": "python benchmarks/lite_install.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    print(f"lite venv {args.venv}: {size['venv_mb']:.0f} MB (site-packages {size['site_packages_mb']:.0f} MB, "
          f"pip+setuptools {size['pip_setuptools_mb']:.0f} MB; facezoo {size['facezoo_mb']:.0f} MB of which "
          f".keras weights {keras_files:.0f} MB unused here, ONNX graphs {onnx_files:.0f} MB); "
          f"TensorFlow/Keras installed: {forbidden or 'none'}")
    print("largest: " + ", ".join(f"{d['name']} {d['mb']:.0f}" for d in size["largest"][:7]))
    print(f"{'cold start (fresh process, wall)':45s} {'median s':>9s} {'range':>13s}")
    for label, r in rows.items():
        print(f"{label:45s} {r['median_s']:9.2f} {r['min_s']:6.2f}-{r['max_s']:.2f}")
    print(f"in-process parts (last run): import {probe_out['import_s']:.2f} s, load {probe_out['load_s']:.2f} s, "
          f"predict {probe_out['predict_s']:.3f} s on {probe_out['backend']}; load average {os.getloadavg()}")
    if parity:
        print(f"against keras here: {parity['decisions_changed']} decisions changed, largest probability change "
              f"{parity['max_prob_change']:.5f}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if forbidden else 0


def _parity(result):
    try:
        import facezoo
        want = facezoo.load("dmtl_celeba", backend="keras").predict(facezoo.sample_image(), check_face=False)
    except Exception as e:  # no TensorFlow here: nothing to compare with
        return {"skipped": str(e).splitlines()[0]}
    changed, dp = 0, 0.0
    for name, e in want["attributes"].items():
        f = result["attributes"][name]
        changed += sum(e[k] != f[k] for k in ("present", "abstain") if k in e)
        dp = max(dp, abs(e["probability"] - f["probability"]), abs(e["confidence"] - f["confidence"]))
    return {"decisions_changed": changed, "max_prob_change": dp}


if __name__ == "__main__":
    sys.exit(main())
