"""Runs a command as N local workers of a ``tf.distribute`` cluster: a cluster on one host.

    python -m facezoo.train.launch --workers 2 -- python recipes/train_dmtl.py --out runs/mw

Each worker is the same command with its own ``TF_CONFIG``::

    {"cluster": {"worker": ["127.0.0.1:P0", "127.0.0.1:P1"]}, "task": {"type": "worker", "index": i}}

so ``facezoo.train.strategy.choose_strategy`` picks ``MultiWorkerMirroredStrategy`` and worker 0
is the chief. The ports are free loopback ports (or ``--port P``, ``P+1``, ...). Every line a
worker prints is prefixed with ``[w<i>]``. When a worker fails the others are stopped (they would
wait for it forever in the next collective); with ``--restarts K`` the whole cluster is then
started again, up to K times, and the trainer resumes from the last checkpoint — what a cluster
manager such as Kubeflow's ``TFJob`` with ``restartPolicy: OnFailure`` does. The exit status is
0 when every worker of the last attempt succeeded, else that of the first worker that failed.

This is the way to try multi-worker training (and its fault tolerance) without a cluster; on
several hosts use ``recipes/cluster/launch_hosts.sh`` or ``recipes/cluster/tfjob.yaml``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct TCP ports that are free on ``host`` right now."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(workers: list[str], index: int) -> str:
    """The ``TF_CONFIG`` JSON of worker ``index`` of a cluster of ``host:port`` workers."""
    if not 0 <= index < len(workers):
        raise ValueError(f"worker index {index} is outside the cluster of {len(workers)} workers")
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": index}})


class _Worker:
    """One worker process whose merged stdout/stderr is copied, line by line, with a prefix."""

    def __init__(self, command, index, config, lock):
        env = dict(os.environ, TF_CONFIG=config, PYTHONUNBUFFERED="1")
        self.index = index
        # Text mode turns tqdm's carriage returns into line ends, so progress bars stay readable.
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1)
        self.thread = threading.Thread(target=self._copy, args=(lock,), daemon=True)
        self.thread.start()

    def _copy(self, lock):
        for line in self.process.stdout:
            if line.strip():
                with lock:
                    sys.stdout.write(f"[w{self.index}] {line.rstrip()}\n")
                    sys.stdout.flush()

    def stop(self, grace: float):
        """SIGTERM, then SIGKILL after ``grace`` seconds; waits for the output to drain."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.thread.join(5)


def _exit_status(returncode: int) -> int:
    """A shell-style status: a worker killed by signal N counts as 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def run_cluster(command, workers: int, *, host: str = "127.0.0.1", port: int | None = None,
                grace: float = 10.0, log=print) -> int:
    """Starts ``workers`` local workers of ``command``, waits for them; returns the exit status.

    Args:
        command: argument list of each worker.
        workers: number of workers.
        host: address every worker listens on.
        port: first port (the workers use ``port``, ``port + 1``, ...); None picks free ports.
        grace: seconds a worker gets to exit after SIGTERM before it is killed.
        log: where the launcher's own messages go.

    Returns:
        0 if every worker exited with 0, else the status of the first worker that failed.
    """
    ports = list(range(port, port + workers)) if port else free_ports(workers, host)
    addresses = [f"{host}:{p}" for p in ports]
    lock = threading.Lock()

    def say(message):
        # Under the workers' lock, so the launcher's lines never land in the middle of a worker's line.
        with lock:
            log(message)
            sys.stdout.flush()

    say(f"[launch] {workers} workers on {', '.join(addresses)}: {shlex.join(command)}")
    procs = [_Worker(command, i, tf_config(addresses, i), lock) for i in range(workers)]
    failed = None
    try:
        running = list(procs)
        while running and failed is None:
            time.sleep(0.2)
            for w in list(running):
                code = w.process.poll()
                if code is None:
                    continue
                running.remove(w)
                if code != 0:
                    failed = (w.index, _exit_status(code))
                    break
    except KeyboardInterrupt:
        failed = (None, 130)
    finally:
        if failed is not None:
            who = "interrupted" if failed[0] is None else f"worker {failed[0]} exited with status {failed[1]}"
            say(f"[launch] {who}; stopping the other workers")
        for w in procs:
            w.stop(grace)
    return 0 if failed is None else failed[1]


def _interrupt(signum, frame):
    """Makes SIGTERM (e.g. from a job scheduler) stop the workers the way Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m facezoo.train.launch",
        description="Run a command as N local workers of a MultiWorkerMirroredStrategy cluster (TF_CONFIG "
                    "set per worker, loopback ports); output lines are prefixed with [w<i>].",
        epilog="example: python -m facezoo.train.launch --workers 2 -- "
               "python recipes/train_dmtl.py --dataset utkface --epochs 2 --out runs/mw")
    p.add_argument("--workers", type=int, required=True, help="number of worker processes (>= 1)")
    p.add_argument("--host", default="127.0.0.1", help="address the workers listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="first port; the workers use PORT, PORT+1, ... "
                                                          "(default: free ports)")
    p.add_argument("--restarts", type=int, default=0,
                   help="restart the whole cluster up to this many times after a failure (default 0)")
    p.add_argument("--grace", type=float, default=10.0,
                   help="seconds a stopped worker gets before it is killed (default 10)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command every worker runs")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command after --, e.g. -- python recipes/train_dmtl.py --out runs/mw")
    if args.workers < 1:
        p.error(f"--workers must be >= 1, got {args.workers}")
    if args.restarts < 0:
        p.error(f"--restarts must be >= 0, got {args.restarts}")
    signal.signal(signal.SIGTERM, _interrupt)
    status = 0
    for attempt in range(args.restarts + 1):
        if attempt:
            print(f"[launch] restarting the cluster (restart {attempt} of {args.restarts})", flush=True)
        status = run_cluster(command, args.workers, host=args.host, port=args.port, grace=args.grace,
                             log=lambda m: print(m, flush=True))
        if status in (0, 130):
            break
    return status


if __name__ == "__main__":
    sys.exit(main())
