"""Building the graphs the backends run, from the shipped weights, with ``facezoo.export``.

``build_graph`` writes one graph atomically (a temporary file renamed into place, then a sidecar JSON with the
file's sha256, so a half-written graph is never used and a damaged one is noticed). It is what ``graph_path`` calls
on a cache miss and what ``recipes/export_graphs.py`` calls to write the graphs shipped in ``exported/<name>/``.

* ONNX fp32 (attributes, expression): the BatchNorm-folded Keras model through ``facezoo.export.onnx.write_onnx``.
* ONNX int8: ONNX Runtime static quantization of the fp32 graph — QDQ, per-channel int8 weights, **uint8
  activations** (with signed activations ONNX Runtime fuses only about half of the convolutions: STACK.md),
  min-max ranges over the calibration images run through the card's preprocessing. Needs ``onnx`` but no
  TensorFlow once the fp32 graph exists.
* TFLite fp32 / float16 / int8: ``facezoo.export.tflite.write_tflite`` with a dynamic batch.
* The detector (task ``detection``): RetinaFace with its preprocessing (BGR, mean subtraction) in the graph, uint8
  canvases of any size in, ``loc``/``conf``/``landmarks`` out; fp32 (and float16 for TFLite).
"""
from __future__ import annotations

import datetime
import os
import shutil
import tempfile

from facezoo.errors import MissingDependencyError, UsageError

DEFAULT_CALIBRATION_IMAGES = 500
MIN_CALIBRATION_IMAGES = 100


def _need(module: str, what: str, extra: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(f"{what} needs {module} ({e}); install it with pip install "
                                     f"\"facezoo[{extra}]\"") from None


def calibration_arrays(card, source, limit: int = DEFAULT_CALIBRATION_IMAGES) -> list:
    """Network inputs for int8 calibration: images of ``source`` (a folder, searched recursively and spread evenly,
    or a list of images) through the card's preprocessing (numpy, as the exported backends run it)."""
    import types

    from facezoo.export import calibration_inputs
    from facezoo.preprocessing import prepare_input_numpy
    if source is None:
        raise UsageError(f"{card.name}: building an int8 graph needs calibration images: pass calibration=DIR "
                         "(a folder of a few hundred face crops like the model's training images)")
    if isinstance(source, (str, os.PathLike)) and not os.path.isdir(source):
        raise UsageError(f"calibration {source}: not a folder of images")
    numpy_runtime = types.SimpleNamespace(preprocess=lambda image: prepare_input_numpy(image, card.spec))
    arrays = calibration_inputs(numpy_runtime, source, limit)
    if len(arrays) < MIN_CALIBRATION_IMAGES:
        raise UsageError(f"calibration: {len(arrays)} images are too few to measure activation ranges; give at "
                         f"least {MIN_CALIBRATION_IMAGES} (clipped ranges cost accuracy)")
    return arrays


def quantize_onnx(fp32_path: str, out_path: str, arrays, op_types=None, method: str = "minmax",
                  exclude=()) -> str:
    """Static QDQ int8 (uint8 activations, per-channel int8 weights) of an ONNX graph, calibrated on ``arrays``;
    ``op_types`` (e.g. ``["Conv"]``) limits which operators are quantized (None: every one ORT can); ``method``
    is the calibration: ``minmax`` (the shipped graphs'), ``percentile`` or ``entropy``; nodes whose name contains
    one of the ``exclude`` substrings stay float."""
    import numpy as np
    _need("onnx", "int8 quantization of ONNX graphs", "export")
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    import onnxruntime as ort
    name = ort.InferenceSession(fp32_path, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    excluded = []
    if exclude:
        import onnx
        excluded = [n.name for n in onnx.load(fp32_path).graph.node if any(e in n.name for e in exclude)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(arrays)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {name: np.asarray(x, np.float32)[None]}

    quantize_static(fp32_path, out_path, Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method={"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                                      "entropy": CalibrationMethod.Entropy}[method],
                    op_types_to_quantize=list(op_types) if op_types else None, nodes_to_exclude=excluded)
    return out_path


def _keras_runtime(directory, card):
    from facezoo.zoo.registry import load
    return load(card.name, directory=directory, backend="keras")


def _detector_forward(directory, card):
    import tensorflow as tf

    from facezoo.face.retinaface import RetinaFaceMobileNet, preprocess_input
    from facezoo.zoo.registry import verified_path
    model = RetinaFaceMobileNet(weights=verified_path(directory, card))

    def forward(images):
        loc, conf, landmarks = model(preprocess_input(images), training=False)
        return {"loc": loc, "conf": conf, "landmarks": landmarks}

    return model, forward, [tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")]


def _write_detector(directory, card, fmt, precision, path):
    from facezoo.errors import require_tensorflow
    tf = require_tensorflow()
    model, forward, signature = _detector_forward(directory, card)
    if fmt == "onnx":
        onnx = _need("onnx", "building ONNX graphs", "export")
        tf2onnx = _need("tf2onnx", "building ONNX graphs", "export")
        from facezoo.export.onnx import OPSET
        proto, _ = tf2onnx.convert.from_function(tf.function(forward), input_signature=signature, opset=OPSET)
        onnx.checker.check_model(proto)
        with open(path, "wb") as f:
            f.write(proto.SerializeToString())
        return
    import keras
    tmp = tempfile.mkdtemp(prefix="facezoo-detector-")
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serving_default", forward, input_signature=signature)
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        if precision == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        with open(path, "wb") as f:
            f.write(converter.convert())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_graph(directory: str, card, fmt: str, precision: str, path: str, *, calibration=None,
                calibration_limit: int = DEFAULT_CALIBRATION_IMAGES, command: str = "") -> str:
    """Builds ``card``'s ``fmt`` graph at ``precision`` into ``path`` atomically, with a ``path + ".json"`` sidecar.

    Returns:
        ``path``.
    """
    from facezoo.backends import _log, graph_path
    from facezoo.files import atomic_write_json, sha256_of
    if card.task == "detection" and precision == "int8":
        raise UsageError("the detector has no int8 graph (no calibrated detector quantization yet)")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write the graph cache {folder}; set FACEZOO_CACHE to a writable folder")
    base, ext = os.path.splitext(path)
    tmp = f"{base}.tmp-{os.getpid()}{ext}"
    from facezoo.backends import importable
    if not (fmt == "onnx" and precision == "int8") and not importable("tensorflow"):
        raise MissingDependencyError(
            f"{card.name}: no {fmt} {precision} graph is shipped for these weights, and building one needs "
            "TensorFlow: pip install \"facezoo[cpu,export]\" (a maintainer rebuilds the shipped graphs with "
            "recipes/export_graphs.py)")
    _log(f"building the {fmt} {precision} graph of {card.name} (once) into {path}")
    info = {"model": card.name, "format": fmt, "precision": precision, "source_sha256": card.sha256,
            "built": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    try:
        if fmt == "onnx" and precision == "int8":
            arrays = calibration_arrays(card, calibration, calibration_limit)
            fp32 = graph_path(directory, card, "onnxruntime", "fp32")
            quantize_onnx(fp32, tmp, arrays)
            info.update(calibration_images=len(arrays), activations="uint8", weights="int8 per channel")
        elif card.task == "detection":
            _write_detector(directory, card, fmt, precision, tmp)
        else:
            from facezoo.errors import require_tensorflow
            require_tensorflow()
            from facezoo.optimize import fold_batch_norm
            runtime = _keras_runtime(directory, card)
            folded = fold_batch_norm(runtime.model)
            if fmt == "onnx":
                _need("tf2onnx", "building ONNX graphs", "export")
                _need("onnx", "building ONNX graphs", "export")
                from facezoo.export.onnx import OPSET, write_onnx
                write_onnx(folded, card.spec, tmp)
                info["opset"] = OPSET
            else:
                from facezoo.export.tflite import write_tflite
                arrays = calibration_arrays(card, calibration, calibration_limit) if precision == "int8" else None
                write_tflite(folded, card.spec, tmp, quantize=None if precision == "fp32" else precision,
                             calibration=arrays, batch=None)
                if arrays is not None:
                    info["calibration_images"] = len(arrays)
        info["sha256"] = sha256_of(tmp)
        info["size_bytes"] = os.path.getsize(tmp)
        if command:
            info["command"] = command
        os.replace(tmp, path)
        atomic_write_json(path + ".json", info)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
