"""ONNX through tf2onnx from a ``tf.function`` with a fixed input signature (``from_keras`` is unreliable on Keras 3).

Like the TFLite export, the ONNX graph is the network alone: input ``images`` float32 ``[N, H, W, C]``
(dynamic batch) preprocessed by ``facezoo.preprocessing.prepare_input``, outputs the logits keyed
``<dataset>__<attr>``. The file is checked with ``onnx.checker`` after writing.
"""
from __future__ import annotations

import os

OPSET = 17


def write_onnx(model, spec, path: str, *, opset: int = OPSET) -> str:
    """Converts ``model`` (preprocessed input of ``spec``) to ``path``; returns ``path``."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    forward = tf.function(lambda images: model(images, training=False))
    signature = [tf.TensorSpec([None, *spec.input_shape], tf.float32, name="images")]
    proto, _ = tf2onnx.convert.from_function(forward, input_signature=signature, opset=opset)
    onnx.checker.check_model(proto)
    with open(path + ".tmp", "wb") as f:
        f.write(proto.SerializeToString())
    os.replace(path + ".tmp", path)
    return path


def onnx_runner(path: str, num_threads: int | None = None):
    """``fn(images [N, H, W, C] float32) -> {output: array}`` over an ONNX file (ONNX Runtime, CPU)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(images):
        return dict(zip(names, session.run(names, {"images": np.asarray(images, np.float32)})))

    return run
