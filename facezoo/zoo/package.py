"""Writing a shippable model folder: weights re-saved and verified, extras, a card listing every file."""
from __future__ import annotations

import os
import shutil

from facezoo.files import sha256_of
from facezoo.zoo.card import CARD_FILE, MODEL_FILE, ModelCard


def package_model(keras_path: str, out_dir: str, card: ModelCard, extra_files=(), *,
                  float16_storage: bool = False) -> ModelCard:
    """Writes ``out_dir``: ``model.keras``, extra files, and ``card.json`` (sha256 and size of the weights).

    The model is re-saved from ``keras_path`` (so the file holds exactly what ``load`` reads) and loaded
    back once with ``safe_mode=True`` to prove it loads. Call ``finalize_files`` after adding more files.

    ``float16_storage`` rounds every float32 weight to the nearest float16 value (the model still computes in
    float32) and deflates the ``.keras`` archive: the 13 mantissa bits float16 drops are zeros, so the file
    shrinks to about 55% of its size. Evaluate the written file: its outputs differ from the original's by the
    rounding (``card.architecture["storage"]`` says so).
    """
    from facezoo.models.weights import load_keras
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, MODEL_FILE)
    tmp = os.path.join(out_dir, "model.tmp.keras")
    model = load_keras(keras_path)
    if float16_storage:
        round_to_float16(model)
    model.save(tmp)
    if float16_storage:
        deflate_archive(tmp)
        card.architecture = {**card.architecture, "storage": "float32 weights rounded to float16 values, deflated "
                                                             "archive (facezoo.zoo.package.round_to_float16)"}
    load_keras(tmp)
    os.replace(tmp, target)
    for f in extra_files:
        shutil.copyfile(f, os.path.join(out_dir, os.path.basename(f)))
    card.weights_file = MODEL_FILE
    return finalize_files(out_dir, card)


def finalize_files(out_dir: str, card: ModelCard) -> ModelCard:
    """Records the sha256 of every file now in ``out_dir`` (but the card) on ``card`` and writes the card."""
    weights = os.path.join(out_dir, card.weights_file)
    card.sha256 = sha256_of(weights)
    card.size_bytes = os.path.getsize(weights)
    card.files = {name: sha256_of(os.path.join(out_dir, name)) for name in sorted(os.listdir(out_dir))
                  if name != CARD_FILE and os.path.isfile(os.path.join(out_dir, name))}
    card.to_json(os.path.join(out_dir, CARD_FILE))
    return card


def shipped_card(folder) -> dict | None:
    """The card (as a dict) of ``folder`` when it is a shipped model (``exported/<name>/``: a card, no training
    ``run.json``), else None: what a recipe warm-started from ``exported/<name>/model.keras`` continues."""
    import json
    if not folder or os.path.isfile(os.path.join(folder, "run.json")) or not os.path.isfile(
            os.path.join(folder, CARD_FILE)):
        return None
    with open(os.path.join(folder, CARD_FILE)) as f:
        return json.load(f)


def round_to_float16(model) -> int:
    """Rounds every float32 weight of ``model`` in place to the nearest float16 value; returns how many."""
    import numpy as np
    n = 0
    for w in model.weights:
        if str(w.dtype) == "float32":
            value = np.asarray(w.numpy())
            rounded = value.astype(np.float16).astype(np.float32)
            w.assign(np.where(np.isfinite(rounded), rounded, value))  # beyond float16's range: kept as it was
            n += 1
    return n


def deflate_archive(path: str):
    """Rewrites the zip archive at ``path`` (a ``.keras`` file) with every member deflated."""
    import zipfile
    tmp = f"{path}.deflate-{os.getpid()}"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED,
                                                       compresslevel=9) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    os.replace(tmp, path)
