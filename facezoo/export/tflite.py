"""TFLite flatbuffers: fp32, float16, dynamic-range and full-integer (int8) quantization.

The TFLite model is the network alone — float32 input ``images [1, H, W, C]`` already preprocessed
(``facezoo.preprocessing.prepare_input``), outputs the model's logits keyed ``<dataset>__<attr>`` —
so any runtime can feed ``FaceModel``'s decoders, and the full-int8 model quantizes only the network
(Model Garden leaves preprocessing out of TFLite exports too; TFLite has no image decoder op).
Input and output stay float32 in every mode; int8 models quantize and dequantize inside.

Conversion goes through a SavedModel of a ``tf.function`` (``from_concrete_functions`` on a Keras 3
model silently yields NaNs). Full int8 calibrates activation ranges on real face images run through
``prepare_input``: give a few hundred (``MIN_CALIBRATION_IMAGES`` at least), or ranges are clipped.
"""
from __future__ import annotations

import os
import shutil
import tempfile

QUANTIZE_MODES = ("float16", "dynamic", "int8")
MIN_CALIBRATION_IMAGES = 100
DEFAULT_CALIBRATION_IMAGES = 500


def write_logits_saved_model(model, spec, path: str, batch: int | None = 1):
    """A SavedModel whose ``serving_default`` maps preprocessed ``images`` to the model's logits.

    Written with Keras' ``ExportArchive``, which stores the variables so that the TFLite converter
    freezes them (a plain ``tf.Module`` holding a Keras 3 model converts to a file without weights whose
    outputs are NaN).
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda images: model(images, training=False), input_signature=[
        tf.TensorSpec([batch, *spec.input_shape], tf.float32, name="images")])
    archive.write_out(path, verbose=False)
    return path


def write_tflite(model, spec, path: str, *, quantize: str | None = None, calibration=None,
                 batch: int | None = 1) -> str:
    """Converts ``model`` to a ``.tflite`` file.

    Args:
        model: a Keras model taking the preprocessed input of ``spec`` (fold BatchNorm first).
        spec: its ``PreprocessSpec``.
        path: the ``.tflite`` file to write.
        quantize: None (fp32), ``"float16"`` (weights), ``"dynamic"`` (int8 weights, float activations)
            or ``"int8"`` (int8 weights and activations, float32 input/output).
        calibration: for ``"int8"``: preprocessed images, an array ``[N, H, W, C]`` or an iterable of
            ``[H, W, C]`` arrays (at least ``MIN_CALIBRATION_IMAGES``).
        batch: the input's batch size; None for a dynamic batch (LiteRT resizes it per call).

    Returns:
        ``path``.
    """
    import numpy as np
    import tensorflow as tf

    from facezoo.errors import UsageError
    if quantize not in (None, *QUANTIZE_MODES):
        raise UsageError(f"quantize must be one of {QUANTIZE_MODES} or None, got {quantize!r}")
    if quantize == "int8":
        if calibration is None:
            raise UsageError("int8 quantization needs calibration images (real face crops)")
        calibration = [np.asarray(x, np.float32) for x in calibration]
        if len(calibration) < MIN_CALIBRATION_IMAGES:
            raise UsageError(f"int8 quantization: {len(calibration)} calibration images are too few to measure "
                             f"activation ranges; give at least {MIN_CALIBRATION_IMAGES}")
    tmp = tempfile.mkdtemp(prefix="facezoo-tflite-")
    try:
        write_logits_saved_model(model, spec, tmp, batch=batch)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.representative_dataset = lambda: ({"images": x[None]} for x in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        flatbuffer = converter.convert()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(path + ".tmp", "wb") as f:
        f.write(flatbuffer)
    os.replace(path + ".tmp", path)
    return path


def tflite_runner(path: str, num_threads: int | None = None):
    """``fn(images [N, H, W, C]) -> {output: array}`` over a ``.tflite`` file: the backends' `LiteRTRunner`
    (one thread per physical core unless ``num_threads`` says otherwise; a batch per call where the graph's batch
    is dynamic, else one image a call)."""
    from facezoo.backends.runners import LiteRTRunner

    return LiteRTRunner(path, threads=num_threads)
