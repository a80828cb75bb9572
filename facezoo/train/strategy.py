"""Picks the ``tf.distribute`` strategy from the environment, so the same command runs anywhere.

``TF_CONFIG`` set → ``MultiWorkerMirroredStrategy`` (one process per host); several local GPUs
(or several logical CPU devices, as tests configure) → ``MirroredStrategy``; else the default
strategy. Nothing else changes between a laptop and a cluster.
"""
from __future__ import annotations

import json
import os

import tensorflow as tf


def cluster_spec():
    """The parsed ``TF_CONFIG`` or None."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
    if "cluster" not in cfg or "task" not in cfg:
        raise ValueError(f"TF_CONFIG needs 'cluster' and 'task' keys, got {sorted(cfg)}")
    return cfg


def choose_strategy(devices=None):
    """Returns the strategy for this process.

    Args:
        devices: optional explicit device list for ``MirroredStrategy``.
    """
    cfg = cluster_spec()
    if cfg is not None and len(cfg["cluster"].get("worker", [])) > 0:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if devices:
        return tf.distribute.MirroredStrategy(devices)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    return tf.distribute.get_strategy()


def is_chief(strategy=None) -> bool:
    """True on the worker that writes checkpoints, logs and artifacts."""
    cfg = cluster_spec()
    if cfg is None:
        return True
    task = cfg["task"]
    if task.get("type") == "chief":
        return True
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0 and "chief" not in cfg["cluster"]


def worker_dir(path: str) -> str:
    """Where this worker writes: ``path`` on the chief, a private temp folder elsewhere.

    Every worker must save a checkpoint under MultiWorkerMirroredStrategy (saving is collective),
    but only the chief's copy is kept.
    """
    if is_chief():
        return path
    task = cluster_spec()["task"]
    return os.path.join(path, f".worker-{task['type']}-{task['index']}")
