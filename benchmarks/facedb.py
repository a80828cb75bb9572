"""``FaceDB`` speed at 1k / 10k / 100k enrolled people: enrollment, top-k search, identify, save and load.

Random unit-length 128-d embeddings stand in for faces (search cost does not depend on what the vectors are;
the network's cost per face is in ``facezoo evaluate``'s batch-1 latency). For each size: bulk ``enroll_many``,
the same number of one-by-one ``enroll`` calls (up to ``--single-enroll``), ``search(k=5)`` of one query and of
a batch of ``--batch`` queries, ``identify`` of one query, ``save`` and ``load``. Medians over ``--runs``.
Prints a table and writes JSON. On cores shared with other jobs, OpenBLAS's worker threads wait on each other
(a 1-query search at 10k took 24 ms with 2 BLAS threads under load, 0.2 ms with one), so the recorded run
pins BLAS to one thread:

    OPENBLAS_NUM_THREADS=1 python benchmarks/facedb.py --out benchmarks/results/facedb.json
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time


def median_ms(fn, runs, warmup=2):
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
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="people enrolled")
    p.add_argument("--per-person", type=int, default=1, help="embeddings per person (1)")
    p.add_argument("--batch", type=int, default=32, help="queries per batched search (32)")
    p.add_argument("--runs", type=int, default=20, help="timed repetitions (20)")
    p.add_argument("--single-enroll", type=int, default=10000, help="time one-by-one enroll up to this size")
    p.add_argument("--out", help="write results as JSON here")
    args = p.parse_args(argv)

    import numpy as np

    from facezoo.face.db import FaceDB

    identity = {"model": "benchmark", "sha256": "0" * 64, "dim": 128}
    rng = np.random.default_rng(0)
    rows = []
    for size in args.sizes:
        n = size * args.per_person
        vectors = rng.normal(size=(n, 128)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        names = [f"person_{i // args.per_person:06d}" for i in range(n)]
        t0 = time.perf_counter()
        db = FaceDB(identity=identity)
        db.enroll_many(names, vectors)
        bulk_ms = (time.perf_counter() - t0) * 1000
        single_ms = None
        if n <= args.single_enroll:
            t0 = time.perf_counter()
            one = FaceDB(identity=identity)
            for name, v in zip(names, vectors):
                one.enroll(name, embeddings=v)
            single_ms = (time.perf_counter() - t0) * 1000 / n
        query = vectors[rng.integers(n)] + rng.normal(scale=0.05, size=128).astype(np.float32)
        batch = vectors[rng.integers(n, size=args.batch)]
        search1 = median_ms(lambda: db.search(embeddings=query, k=5), args.runs)
        searchb = median_ms(lambda: db.search(embeddings=batch, k=5), max(3, args.runs // 4))
        ident = median_ms(lambda: db.identify(embeddings=query, threshold=0.9), args.runs)
        assert db.search(embeddings=vectors[7], k=1)[0]["name"] == names[7]  # finds itself
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "db")
            save = median_ms(lambda: db.save(path), 3, warmup=1)
            load = median_ms(lambda: FaceDB.load(path, identity=identity), 3, warmup=1)
            size_mb = (os.path.getsize(path + ".npz") + os.path.getsize(path + ".json")) / 1e6
        rows.append({"people": size, "embeddings": n, "enroll_many_ms": bulk_ms, "enroll_one_ms_each": single_ms,
                     "search1_k5_ms": search1, f"search{args.batch}_k5_ms": searchb,
                     f"search{args.batch}_k5_ms_per_query": searchb / args.batch, "identify1_ms": ident,
                     "save_ms": save, "load_ms": load, "file_mb": size_mb})

    print(f"{'people':>8s} {'enroll_many':>12s} {'enroll(1)':>10s} {'search k=5':>11s} "
          f"{f'search x{args.batch}':>11s} {'identify':>9s} {'save':>8s} {'load':>8s} {'file':>8s}")
    for r in rows:
        one = f"{r['enroll_one_ms_each'] * 1000:7.1f} us" if r["enroll_one_ms_each"] is not None else "         -"
        print(f"{r['people']:8d} {r['enroll_many_ms']:9.1f} ms {one} {r['search1_k5_ms']:8.2f} ms "
              f"{r[f'search{args.batch}_k5_ms']:8.2f} ms {r['identify1_ms']:6.2f} ms {r['save_ms']:5.1f} ms "
              f"{r['load_ms']:5.1f} ms {r['file_mb']:5.1f} MB")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                   "numpy": np.__version__, "load_average": os.getloadavg(),
                                   "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
                       "per_person": args.per_person,
                       "results": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
