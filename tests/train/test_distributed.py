"""Multi-worker training on one host: two MWMS workers on 127.0.0.1, a worker killed mid-epoch, and
MirroredStrategy over two logical CPUs.

The reference for the workers is ``MirroredStrategy`` over two logical CPU devices in one process,
not one device: with a global batch of 8 each of the two replicas normalises its own 4 examples
in BatchNorm (Keras BatchNorm is not synchronised), so one device normalising all 8 computes a
different function. Two MWMS workers and two mirrored replicas see the same per-replica slices
(DATA sharding hands replica/worker ``i`` the ``i``-th half of every global batch), reduce
gradients the same way, and the trainer averages BatchNorm statistics the same way, so the
weights must agree; they agree bit for bit here.

All runs start at once in one fixture (they are mostly waiting on each other and on tracing) and
each test checks one of them.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(REPO, "tests", "train", "distributed_worker.py")
EPOCHS, STEPS = 3, 2
DIE_AT_STEP = 3  # in the middle of epoch 2
TIMEOUT_S = 1200  # a guard against hangs only: an idle machine needs about a minute


def _start(args, out):
    log = open(os.path.join(out, "log.txt"), "w")
    # A session of its own, so that a hung run can be stopped with its workers.
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, log


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs the reference, a clean 2-worker cluster and a cluster whose worker 1 dies once; returns their folders."""
    root = tmp_path_factory.mktemp("distributed")
    outs = {name: root / name for name in ("mirrored", "cluster", "faulty")}
    for out in outs.values():
        out.mkdir()
    common = ["--epochs", str(EPOCHS), "--steps", str(STEPS)]
    launch = ["-m", "facezoo.train.launch", "--workers", "2", "--grace", "5"]
    started = {}
    try:
        started["mirrored"] = _start([WORKER, "--mirrored", "--out", str(outs["mirrored"]), *common],
                                     outs["mirrored"])
        started["cluster"] = _start([*launch, "--", sys.executable, WORKER, "--out", str(outs["cluster"]), *common],
                                    outs["cluster"])
        started["faulty"] = _start([*launch, "--restarts", "1", "--", sys.executable, WORKER, "--out",
                                    str(outs["faulty"]), *common, "--die-at-step", str(DIE_AT_STEP),
                                    "--die-worker", "1", "--die-marker", str(outs["faulty"] / "died")],
                                   outs["faulty"])
        deadline = time.monotonic() + TIMEOUT_S
        codes = {name: proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                 for name, (proc, _) in started.items()}
    finally:
        for proc, log in started.values():
            _stop(proc)
            log.close()
    return outs, codes


def _result(out, tag):
    with open(out / f"result-{tag}.json") as f:
        result = json.load(f)
    weights = np.load(out / f"weights-{tag}.npz")
    return result, [weights[k] for k in weights.files]


def _check(runs, name):
    outs, codes = runs
    log = (outs[name] / "log.txt").read_text()
    assert codes[name] == 0, f"{name} failed with status {codes[name]}:\n{log[-4000:]}"
    return outs[name], log


def _assert_same_weights(a, b, atol=0.0):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=0, atol=atol)


def test_mirrored_strategy_over_two_logical_cpus_runs_the_custom_loop(runs):
    out, _ = _check(runs, "mirrored")
    result, _ = _result(out, "mirrored")
    assert result["replicas"] == 2
    assert [r["epoch"] for r in result["history"]] == list(range(1, EPOCHS + 1))
    assert all(np.isfinite(r["loss"]) for r in result["history"])
    # The replicas' BatchNorm statistics drift apart during an epoch; the trainer averages them.
    assert result["replica_spread"] == 0.0


def test_two_workers_end_identical_and_match_mirrored_strategy(runs):
    out, log = _check(runs, "cluster")
    (w0, weights0), (w1, weights1) = _result(out, "w0"), _result(out, "w1")
    reference, reference_weights = _result(_check(runs, "mirrored")[0], "mirrored")
    assert w0["replicas"] == w1["replicas"] == 2
    assert w0["step"] == w1["step"] == EPOCHS * STEPS
    _assert_same_weights(weights0, weights1)
    _assert_same_weights(weights0, reference_weights, atol=1e-5)
    np.testing.assert_allclose([r["loss"] for r in w0["history"]], [r["loss"] for r in reference["history"]],
                               rtol=1e-5)
    # Only the chief writes the run's files; worker 1 checkpoints into its own folder.
    assert (out / "last.keras").exists() and (out / "ckpt").is_dir()
    assert (out / ".worker-worker-1" / "ckpt").is_dir()
    assert not (out / ".worker-worker-1" / "last.keras").exists()
    assert "[w0]" in log and "[w1]" in log


def test_killed_worker_resumes_from_last_checkpoint(runs):
    out, log = _check(runs, "faulty")
    assert "worker 1 exited with status 3" in log
    assert "restarting the cluster" in log
    (w0, weights0), (w1, weights1) = _result(out, "w0"), _result(out, "w1")
    # Both workers of the second life restored the checkpoint of epoch 1 (the kill came mid-epoch 2).
    assert w0["start_step"] == w1["start_step"] == STEPS
    assert w0["step"] == w1["step"] == EPOCHS * STEPS
    with open(out / "state.json") as f:
        history = json.load(f)["history"]
    assert [r["epoch"] for r in history] == list(range(1, EPOCHS + 1))
    assert [r["epoch"] for r in w1["history"]] == list(range(1, EPOCHS + 1))
    # Every epoch sees the same batches, so the interrupted run must end where an uninterrupted one does.
    _assert_same_weights(weights0, weights1)
    reference, reference_weights = _result(_check(runs, "mirrored")[0], "mirrored")
    _assert_same_weights(weights0, reference_weights, atol=1e-5)
    np.testing.assert_allclose([r["loss"] for r in history], [r["loss"] for r in reference["history"]], rtol=1e-5)
