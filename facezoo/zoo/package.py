"""Writing a shippable model folder: weights re-saved and verified, extras, a card listing every file."""
from __future__ import annotations

import os
import shutil

from facezoo.files import sha256_of
from facezoo.zoo.card import CARD_FILE, MODEL_FILE, ModelCard


def package_model(keras_path: str, out_dir: str, card: ModelCard, extra_files=()) -> ModelCard:
    """Writes ``out_dir``: ``model.keras``, extra files, and ``card.json`` (sha256 and size of the weights).

    The model is re-saved from ``keras_path`` (so the file holds exactly what ``load`` reads) and loaded
    back once with ``safe_mode=True`` to prove it loads. Call ``finalize_files`` after adding more files.
    """
    from facezoo.models.weights import load_keras
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, MODEL_FILE)
    tmp = os.path.join(out_dir, "model.tmp.keras")
    load_keras(keras_path).save(tmp)
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
