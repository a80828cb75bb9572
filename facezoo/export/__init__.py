"""Exports of shipped models: SavedModel for TF Serving, ONNX, TFLite (fp32, float16, dynamic, int8).

``export_model(name_or_model, format=..., out=..., quantize=...)`` is what ``facezoo export`` runs.
Every export starts from the model with its BatchNormalization folded (``facezoo.optimize.fold_batch_norm``),
wrapped by ``facezoo.optimize.flip_test_network`` when the card (or the ``FaceModel`` passed) has the flip test on.

* ``saved_model``: ``out/<name>/<version>/`` + ``out/models.config``; signatures on image bytes, uint8
  crops and preprocessed input, all returning decoded answers (``facezoo.export.serving``).
* ``onnx``: ``out/<name>.onnx``; ``tflite``: ``out/<name>[_<quantize>].tflite``. Both are the network
  alone (preprocessed float input -> logits keyed ``<dataset>__<attr>``), with the card written beside
  them (``out/<name>.card.json``) so a client has the preprocessing spec, label names and thresholds.

ONNX needs ``tf2onnx`` and ``onnx``; checking TFLite files needs ``ai-edge-litert``:
``pip install "facezoo[export]"``.
"""
from __future__ import annotations

import os

from facezoo.errors import MissingDependencyError, UsageError

FORMATS = ("saved_model", "onnx", "tflite")


def _require(module: str, package: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{package} is not installed ({e}); install it with "
                                     "pip install \"facezoo[export]\"") from None


def check_export_arguments(format: str, out: str, quantize: str | None = None, calibration=None):
    """Raises ``UsageError`` for a bad format, flag combination or output folder, before any work."""
    from facezoo.export.tflite import QUANTIZE_MODES
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if quantize is not None and format != "tflite":
        raise UsageError(f"--quantize applies to --format tflite only, not {format}")
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise UsageError(f"unknown quantization {quantize!r}; choose one of {', '.join(QUANTIZE_MODES)}")
    if quantize == "int8" and calibration is None:
        raise UsageError("--quantize int8 needs --calibration DIR (a folder of a few hundred face crops like "
                         "the model's training images) to measure activation ranges")
    if calibration is not None and quantize != "int8":
        raise UsageError("--calibration is used by --quantize int8 only")
    if isinstance(calibration, (str, os.PathLike)) and not os.path.isdir(calibration):
        raise UsageError(f"--calibration {calibration}: not a folder of images")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: is a file; give a folder")
    existing = out
    while not os.path.exists(existing):
        parent = os.path.dirname(os.path.abspath(existing))
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
        raise UsageError(f"--out {out}: {existing} is not a writable folder")


def calibration_inputs(face_model, source, limit: int | None = None) -> list:
    """Preprocessed network inputs (``prepare_input`` with the card's spec) for int8 calibration.

    Args:
        face_model: the ``FaceModel`` being exported.
        source: a folder (image files found recursively, sorted, then spread evenly over ``limit``), or a
            list of anything ``facezoo.images.load_image`` reads.
        limit: at most this many images (default ``facezoo.export.tflite.DEFAULT_CALIBRATION_IMAGES``).
    """
    from facezoo.export.tflite import DEFAULT_CALIBRATION_IMAGES
    from facezoo.images import load_image
    limit = limit or DEFAULT_CALIBRATION_IMAGES
    items = _image_files(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise UsageError(f"no calibration images in {source}")
    if len(items) > limit:
        step = len(items) / limit
        items = [items[int(i * step)] for i in range(limit)]
    return [face_model.preprocess(load_image(item)) for item in items]


def _image_files(folder: str) -> list[str]:
    """Image files under ``folder``, recursively, in sorted order."""
    from facezoo.images import IMAGE_EXTENSIONS
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS))
    return found


def _face_model(name_or_model):
    if isinstance(name_or_model, str):
        import facezoo
        return facezoo.load(name_or_model, backend="keras", fold_batchnorm=False)  # exports fold it themselves
    if hasattr(name_or_model, "model") and hasattr(name_or_model, "card"):
        return name_or_model
    raise UsageError(f"export_model needs a model name or a FaceModel, got {type(name_or_model).__name__}")


def export_model(name_or_model, *, format: str = "saved_model", out: str = "exports", quantize: str | None = None,
                 version: int = 1, calibration=None, calibration_limit: int | None = None,
                 fold: bool = True) -> str:
    """Exports a shipped model; see the module docstring.

    Args:
        name_or_model: a registered name (``"dmtl_celeba"``) or a loaded ``FaceModel``.
        format: ``saved_model``, ``onnx`` or ``tflite``.
        out: the output folder (created if missing).
        quantize: TFLite only: ``float16``, ``dynamic`` or ``int8``.
        version: SavedModel version folder.
        calibration: int8 only: a folder of face images or a list of images (see ``calibration_inputs``).
        calibration_limit: at most this many calibration images.
        fold: fold BatchNormalization first (the outputs are the same to ~1e-6).

    Returns:
        The path written (the version folder, or the ``.onnx`` / ``.tflite`` file).

    Examples:
        >>> export_model("dmtl_celeba", format="saved_model", out="serving")
        'serving/dmtl_celeba/1'
    """
    check_export_arguments(format, out, quantize, calibration)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UsageError(f"version must be a positive int, got {version!r}")
    if format == "onnx":
        _require("tf2onnx", "tf2onnx")
        _require("onnx", "onnx")
    face_model = _face_model(name_or_model)
    card = face_model.card
    model = face_model.model
    if fold:
        from facezoo.optimize import fold_batch_norm
        model = fold_batch_norm(model)
    if getattr(face_model, "flip_test", False):  # the card's (or the runtime's) flip test, inside the graph
        from facezoo.optimize import flip_test_network
        model = flip_test_network(model)
    os.makedirs(out, exist_ok=True)
    if format == "saved_model":
        from facezoo.export.saved_model import write_saved_model
        return write_saved_model(model, card, out, version=version)
    card.to_json(os.path.join(out, f"{card.name}.card.json"))
    if format == "onnx":
        from facezoo.export.onnx import write_onnx
        return write_onnx(model, card.spec, os.path.join(out, f"{card.name}.onnx"))
    from facezoo.export.tflite import write_tflite
    images = calibration_inputs(face_model, calibration, calibration_limit) if quantize == "int8" else None
    suffix = f"_{quantize}" if quantize else ""
    return write_tflite(model, card.spec, os.path.join(out, f"{card.name}{suffix}.tflite"), quantize=quantize,
                        calibration=images)
