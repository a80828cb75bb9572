"""Inference speed, size, cold start and accuracy of one model on every installed backend and precision.

Run from the repository root (``python benchmarks/inference.py --help``): the same measurement as
``facezoo bench NAME`` (``facezoo.bench`` documents every figure and the benchmark hygiene), writing its JSON to
``benchmarks/results/inference_<name>.json`` unless ``--json`` says otherwise. Data sets are read from
``$FACEZOO_DATA`` or ``../shared/data`` (the accuracy change and the int8 calibration of graphs that are not
shipped; both are skipped without them).

    python benchmarks/inference.py dmtl_celeba
    PYTHONPATH=/path/to/openvino/site-packages python benchmarks/inference.py dmtl_celeba   # with OpenVINO
"""
import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    from facezoo.bench import add_bench_arguments, run_bench
    from facezoo.cli import quiet_tensorflow
    from facezoo.errors import UserError
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(p)
    args = p.parse_args(argv)
    if not args.json:
        args.json = os.path.join(REPO, "benchmarks", "results", f"inference_{args.model}.json")
    if not args.data_dir:
        args.data_dir = os.environ.get("FACEZOO_DATA", os.path.join(REPO, "..", "shared", "data"))
    quiet_tensorflow()
    try:
        run_bench(args)
    except UserError as e:
        print(f"benchmarks/inference.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
