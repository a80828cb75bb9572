"""Small file helpers every layer shares: atomic writes and checksums."""
from __future__ import annotations

import hashlib
import json
import os


def atomic_write(path, text: str):
    """Writes ``text`` to ``path`` through a temporary file in the same folder, so readers never see half a file."""
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_json(path, data, **kwargs):
    """``atomic_write`` of ``json.dumps(data)`` plus a final newline."""
    atomic_write(path, json.dumps(data, **{"indent": 1, **kwargs}) + "\n")


def atomic_save_model(model, path):
    """Saves a Keras model to ``path`` (``.keras``) atomically."""
    path = os.fspath(path)
    tmp = path[: -len(".keras")] + f".tmp-{os.getpid()}.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def sha256_of(path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
