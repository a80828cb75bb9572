"""The local cluster launcher and the multi-host script, with commands that need no TensorFlow."""
import json
import os
import subprocess
import sys

import pytest

from facezoo.train import launch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCH_HOSTS = os.path.join(REPO, "recipes", "cluster", "launch_hosts.sh")
PRINT_TASK = ("import json, os, sys; c = json.loads(os.environ['TF_CONFIG']); "
              "print('cluster', ','.join(c['cluster']['worker'])); print('task', c['task']['index'])")


def run_launch(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "facezoo.train.launch", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_every_worker_gets_its_tf_config_and_a_prefix():
    result = run_launch("--workers", "3", "--", sys.executable, "-c", PRINT_TASK)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    clusters = {line.split(" ", 2)[2] for line in lines if line.startswith("[w") and " cluster " in line}
    assert len(clusters) == 1
    workers = clusters.pop().split(",")
    assert len(set(workers)) == 3 and all(w.startswith("127.0.0.1:") for w in workers)
    for i in range(3):
        assert f"[w{i}] task {i}" in lines


def test_a_failing_worker_fails_the_launch_and_stops_the_others():
    code = ("import json, os, sys, time; i = json.loads(os.environ['TF_CONFIG'])['task']['index']; "
            "sys.exit(7) if i == 1 else (time.sleep(60), print('worker 0 finished'))")
    result = run_launch("--workers", "2", "--grace", "1", "--", sys.executable, "-c", code)
    assert result.returncode == 7
    assert "worker 1 exited with status 7; stopping the other workers" in result.stdout
    assert "[w0] worker 0 finished" not in result.stdout


def test_restarts_run_the_cluster_again(tmp_path):
    marker = tmp_path / "first-life"
    code = (f"import os, sys; p = {str(marker)!r}; "
            "sys.exit(0) if os.path.exists(p) else (open(p, 'w').close(), sys.exit(3))")
    result = run_launch("--workers", "2", "--restarts", "2", "--", sys.executable, "-c", code)
    assert result.returncode == 0
    assert result.stdout.count("restarting the cluster") == 1
    assert run_launch("--workers", "2", "--", sys.executable, "-c", "import sys; sys.exit(3)").returncode == 3


def test_fixed_ports_and_argument_errors():
    port = launch.free_ports(1)[0]
    result = run_launch("--workers", "1", "--port", str(port), "--", sys.executable, "-c", PRINT_TASK)
    assert f"[w0] cluster 127.0.0.1:{port}" in result.stdout
    assert run_launch("--workers", "2").returncode == 2
    assert "give the command after --" in run_launch("--workers", "2").stderr
    with pytest.raises(ValueError, match="outside the cluster of 2 workers"):
        launch.tf_config(["a:1", "b:2"], 2)


def test_launch_hosts_builds_the_same_tf_config():
    hosts = ["host-a:2222", "host-b:2223"]
    for index in range(2):
        result = subprocess.run(["bash", LAUNCH_HOSTS, ",".join(hosts), str(index), "--", sys.executable, "-c",
                                 "import os; print(os.environ['TF_CONFIG'])"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == json.loads(launch.tf_config(hosts, index))
    bad = subprocess.run(["bash", LAUNCH_HOSTS, "host-a:2222", "1", "--", "true"], capture_output=True, text=True)
    assert bad.returncode == 2 and "INDEX 1 is outside the 1 hosts" in bad.stderr


def test_tfjob_manifest_runs_the_recipe_on_workers_with_a_shared_out():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(REPO, "recipes", "cluster", "tfjob.yaml")) as f:
        claim, job = list(yaml.safe_load_all(f))
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    worker = job["spec"]["tfReplicaSpecs"]["Worker"]
    container = worker["template"]["spec"]["containers"][0]
    assert job["kind"] == "TFJob" and worker["replicas"] >= 2 and container["name"] == "tensorflow"
    assert container["command"] == ["python", "recipes/train_dmtl.py"]
    out = container["args"][container["args"].index("--out") + 1]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert out.startswith(mounts["runs"] + "/")
    volumes = {v["name"]: v for v in worker["template"]["spec"]["volumes"]}
    assert volumes["runs"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
