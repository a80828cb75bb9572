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


def store_float16(path: str, out_path: str | None = None, *, min_elements: int = 1024) -> dict:
    """Rewrites an fp32 ONNX graph with its large float32 weights stored as float16, each behind a ``Cast`` back
    to float32: the file shrinks to about half, and the network still computes in float32 (ONNX Runtime folds the
    casts into float32 constants when it builds the session; OpenVINO likewise).

    The values change by float16 rounding only (relative 2^-11); quantize (``facezoo.backends.build.quantize_onnx``)
    from the original fp32 file, not from this one.

    Returns:
        ``{"converted": initializers rewritten, "size_bytes": new size}``.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    graph = model.graph
    kept, casts, converted = [], [], 0
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if init.data_type != onnx.TensorProto.FLOAT or value.size < min_elements or not np.isfinite(
                value.astype(np.float16)).all():
            kept.append(init)
            continue
        half = numpy_helper.from_array(value.astype(np.float16), name=f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=f"{init.name}__cast"))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)  # casts first: nodes stay in topological order
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    target = out_path or path
    with open(target + ".tmp", "wb") as f:
        f.write(model.SerializeToString())
    os.replace(target + ".tmp", target)
    return {"converted": converted, "size_bytes": os.path.getsize(target)}
