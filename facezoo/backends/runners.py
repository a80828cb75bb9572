"""One callable per runtime: ``runner(batch) -> {output name: numpy array}`` over a graph file.

Inputs are numpy arrays of the graph's input dtype (float32 network input for attribute models, uint8 canvases for
the detector, whose preprocessing is in its graph); outputs are keyed by the graph's output names (the Keras
model's output keys). Nothing here imports TensorFlow.
"""
from __future__ import annotations

import os

import numpy as np

from facezoo.errors import ModelFileError


def physical_cores() -> int:
    """Physical cores this process may run on: the CPUs of its affinity mask, hyper-thread siblings counted once
    (``/sys/devices/system/cpu/cpuN/topology/thread_siblings_list``); the CPU count where that is unreadable."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                cores.add(f.read().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def make_runner(backend: str, path: str, precision: str = "fp32", *, threads: int | None = None,
                optimized: str | None = None):
    """The runner of ``backend`` over ``path``; ``precision`` matters to OpenVINO (bf16 is a compile hint);
    ``optimized`` is where ONNX Runtime keeps its optimised copy of the graph."""
    if backend == "onnxruntime":
        return OnnxRuntimeRunner(path, threads, optimized)
    if backend == "litert":
        return LiteRTRunner(path, threads)
    if backend == "openvino":
        return OpenVINORunner(path, precision, threads)
    raise ValueError(f"no exported-graph runner for backend {backend!r}")


class OnnxRuntimeRunner:
    """ONNX Runtime on the CPU, every graph optimisation on; ``threads`` None: one per physical core.

    Its worker threads do not spin-wait after a call (``session.intra_op.allow_spinning = 0``): ``analyze`` runs
    four sessions in turn (detector and three models) with numpy work in between, and a session spinning on the
    cores after its call slows whatever runs next (on 2 loaded cores, batch-1 detection went from 12-16 ms with
    spinning to 8-10 ms without; on 2 idle cores the whole analyze path at batch 1 takes 68 ms with spinning, 25
    without). ``FACEZOO_ORT_SPIN=1`` turns spinning on for a process that runs one model only: a lone
    ``dmtl_celeba`` session then answers batch 1 in 1.47 ms instead of 2.05 (idle cores).

    ``optimized``: a file for the graph as ONNX Runtime optimises it (layout and fusions for this CPU and ORT
    version, so the caller keys the name by both). The first session writes it; later ones load it with the
    optimiser off, which takes about a third of the time (0.13 s instead of 0.39 s for a DMTL model).
    """

    def __init__(self, path: str, threads: int | None = None, optimized: str | None = None):
        import onnxruntime as ort

        def options(level, save=None):
            o = ort.SessionOptions()
            o.graph_optimization_level = level
            o.log_severity_level = 3
            spin = os.environ.get("FACEZOO_ORT_SPIN", "0")
            o.add_session_config_entry("session.intra_op.allow_spinning", spin)
            o.add_session_config_entry("session.inter_op.allow_spinning", spin)
            if save:
                o.optimized_model_filepath = save
            if threads:
                o.intra_op_num_threads = int(threads)
                o.inter_op_num_threads = 1
            return o

        self.session = None
        if optimized and os.path.isfile(optimized):
            try:
                self.session = ort.InferenceSession(optimized, options(ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                                                    providers=["CPUExecutionProvider"])
            except Exception:  # a damaged optimised copy: rebuild it from the verified graph below
                self.session = None
        if self.session is None:
            tmp = None
            if optimized and os.access(os.path.dirname(optimized) or ".", os.W_OK):
                tmp = f"{optimized}.tmp-{os.getpid()}.onnx"
            try:
                self.session = ort.InferenceSession(path, options(ort.GraphOptimizationLevel.ORT_ENABLE_ALL, tmp),
                                                    providers=["CPUExecutionProvider"])
            except Exception as e:  # ORT raises its own Fail/InvalidGraph types for a damaged file
                raise ModelFileError(f"{path}: ONNX Runtime cannot load it ({str(e).splitlines()[0][:200]})") from None
            finally:
                if tmp and os.path.exists(tmp):
                    if self.session is not None:
                        os.replace(tmp, optimized)
                    else:
                        os.remove(tmp)
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_dtype = np.uint8 if first.type == "tensor(uint8)" else np.float32
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch) -> dict:
        x = np.ascontiguousarray(batch, self.input_dtype)
        return dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: x})))


class LiteRTRunner:
    """The LiteRT interpreter (``ai_edge_litert``, XNNPACK) through the ``serving_default`` signature;
    ``threads`` None: one per physical core (`physical_cores`).

    The interpreter's own default (``num_threads=None``) is one thread: on 2 idle AMD EPYC cores ``dmtl_celeba``
    answered batch 1 in 2.47 ms (fp32) / 0.71 ms (int8) with it and 1.48 / 0.53 ms with two.

    A graph with a dynamic batch runs a whole batch per call (the input is resized when its shape changes);
    a batch-1 graph runs one image per call.
    """

    def __init__(self, path: str, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=path, num_threads=int(threads or physical_cores()))
        except (ValueError, RuntimeError) as e:
            raise ModelFileError(f"{path}: LiteRT cannot load it ({str(e).splitlines()[0][:200]})") from None
        self.runner = self.interpreter.get_signature_runner("serving_default")
        details = self.runner.get_input_details()
        (self.input_name, info), = details.items()
        self.input_dtype = np.dtype(info["dtype"]).type
        self.dynamic_batch = int(info["shape_signature"][0]) == -1

    def __call__(self, batch) -> dict:
        x = np.ascontiguousarray(batch, self.input_dtype)
        if self.dynamic_batch:
            return dict(self.runner(**{self.input_name: x}))  # the signature runner returns copies already
        rows = [self.runner(**{self.input_name: x[i:i + 1]}) for i in range(len(x))]
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


class OpenVINORunner:
    """OpenVINO on the CPU; ``precision="bf16"`` sets ``INFERENCE_PRECISION_HINT`` (AMX/AVX512-BF16 matmuls),
    an int8 (QDQ) graph runs its quantized convolutions in int8."""

    def __init__(self, path: str, precision: str = "fp32", threads: int | None = None):
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = core.compile_model(core.read_model(path), "CPU", config)
        except RuntimeError as e:
            raise ModelFileError(f"{path}: OpenVINO cannot load it ({str(e).splitlines()[0][:200]})") from None
        self.request = self.compiled.create_infer_request()
        element = self.compiled.inputs[0].get_element_type().get_type_name()
        self.input_dtype = np.uint8 if element == "u8" else np.float32
        self.outputs = [(o.get_any_name(), o) for o in self.compiled.outputs]

    def __call__(self, batch) -> dict:
        x = np.ascontiguousarray(batch, self.input_dtype)
        result = self.request.infer({0: x})
        return {name: np.array(result[port], copy=True) for name, port in self.outputs}
