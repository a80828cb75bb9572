"""SavedModel in TF Serving's layout: ``DIR/<name>/<version>/`` plus ``DIR/models.config``.

The SavedModel holds a ``ServingModule`` (image bytes, uint8 crops or preprocessed input -> decoded
answers) around the model with its BatchNormalization folded; the card goes into
``assets.extra/card.json`` (TF Serving ignores that folder; it keeps the provenance with the weights).
``models.config`` lists every model folder in ``DIR``, with ``base_path`` under ``/models`` as the
``tensorflow/serving`` container mounts it, so several models exported into one folder are served together.
"""
from __future__ import annotations

import os
import shutil

MODELS_CONFIG = "models.config"
CONTAINER_ROOT = "/models"


def version_dir(out: str, name: str, version: int) -> str:
    """``out/<name>/<version>``: where TF Serving looks for one version of a model."""
    return os.path.join(out, name, str(int(version)))


def write_models_config(out: str, container_root: str = CONTAINER_ROOT) -> str:
    """Writes ``out/models.config`` naming every ``out/<name>/<version>/saved_model.pb``; returns its path."""
    from facezoo.files import atomic_write
    names = []
    for name in sorted(os.listdir(out)):
        folder = os.path.join(out, name)
        if os.path.isdir(folder) and any(
                v.isdigit() and os.path.isfile(os.path.join(folder, v, "saved_model.pb")) for v in os.listdir(folder)):
            names.append(name)
    entries = "".join(
        f"  config {{\n    name: '{n}'\n    base_path: '{container_root}/{n}'\n    model_platform: 'tensorflow'\n  }}\n"
        for n in names)
    path = os.path.join(out, MODELS_CONFIG)
    atomic_write(path, "model_config_list {\n" + entries + "}\n")
    return path


def write_saved_model(model, card, out: str, *, version: int = 1) -> str:
    """Writes the serving SavedModel of ``model`` (already folded, if wanted) and ``models.config``.

    Args:
        model: a DMTL Keras model.
        card: its ``ModelCard`` (preprocessing, thresholds, abstain band; copied into ``assets.extra``).
        out: the serving root (``DIR``); created if missing.
        version: the version folder (a positive int); an existing one is replaced.

    Returns:
        The version folder written.
    """
    import tensorflow as tf

    from facezoo.export.serving import ServingModule
    target = version_dir(out, card.name, version)
    tmp = target + f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    module = ServingModule(model, card)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        card.to_json(os.path.join(tmp, "assets.extra", "card.json"))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_models_config(out)
    return target
