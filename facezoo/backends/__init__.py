"""Backends behind ``facezoo.load``: the same ``predict`` from Keras, ONNX Runtime, LiteRT or OpenVINO.

    import facezoo
    model = facezoo.load("dmtl_celeba")                                   # the default backend (see below)
    model = facezoo.load("dmtl_celeba", backend="onnxruntime", precision="int8")
    model.predict("crop.jpg")                                             # the structure FaceModel.predict gives

Backends and precisions (``SUPPORTED``):

* ``keras`` — the shipped ``model.keras`` through TensorFlow (``FaceModel``); fp32. Needs ``facezoo[cpu]``.
* ``onnxruntime`` — fp32, and int8 (static QDQ, uint8 activations, per-channel int8 weights: the variant that
  fuses every convolution on VNNI/AMX CPUs; ONNX Runtime's default signed activations fuse about half).
  ``facezoo[lite]``.
* ``litert`` — the LiteRT interpreter (XNNPACK): fp32, float16 (weights) and int8 (weights and activations).
  ``facezoo[litert]``.
* ``openvino`` — fp32, bf16 (an inference-precision hint on the fp32 graph; needs a CPU with AVX512-BF16 or
  AMX-BF16) and int8 (the QDQ graph). ``facezoo[openvino]``.

Where the graphs come from: the fp32 and int8 ONNX graphs of every shipped model are **shipped in the package**
(``exported/<name>/model.onnx``, ``model_int8.onnx``, listed on the card with their sha256 and the sha256 of the
weights they were built from; ``recipes/export_graphs.py`` rebuilds them), so ``facezoo[lite]`` runs without
TensorFlow. Everything else (the LiteRT files, a graph whose weights changed since it was shipped, int8 of a
model with no shipped int8 graph) is built by ``facezoo.export`` at first use into the user cache
(``$FACEZOO_CACHE``, else ``$XDG_CACHE_HOME/facezoo``, else ``~/.cache/facezoo``), one folder per weights
sha256, written atomically (a temporary file renamed into place) with a sidecar recording the file's own sha256,
which is checked on every load. Building needs TensorFlow (and ``tf2onnx`` for ONNX); int8 needs calibration
images (``calibration=`` a folder of face crops like the training images).

Why shipped, not built at install time: a pip install cannot run TensorFlow (``facezoo[lite]`` has none) and
wheels are built once, not per user; the ONNX files are 12-14 MB fp32 and 3-4 MB int8 per model, each under the
15 MB-per-file limit of the shipped models.

The default (``backend=None`` or ``"auto"``) is the first installed of ``onnxruntime``, ``openvino``, ``litert``
(only when TensorFlow can build its graphs), ``keras`` whose graph is ready — shipped or cached: the default never
builds one (with TensorFlow installed, a model without a ready graph runs on Keras); the precision defaults to
``fp32``, the only one that gives the Keras answers (to ~1e-5). ``precision="auto"`` picks from what the CPU
supports (``cpu_flags()``, read from ``/proc/cpuinfo``): bf16 on OpenVINO when the CPU has AVX512-BF16 or AMX-BF16,
else int8 when it has VNNI (AVX512-VNNI, AVX-VNNI or AMX-INT8) and an int8 graph exists, else fp32 — int8 and bf16
change a fraction of a percent of decisions (the cards' ``quantization`` sections). ``FACEZOO_BACKEND`` and
``FACEZOO_PRECISION`` set the defaults for a whole process (the CLI's ``--backend``/``--precision``).
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys

from facezoo.errors import MissingDependencyError, ModelFileError, UsageError

BACKENDS = ("keras", "onnxruntime", "litert", "openvino")
PRECISIONS = ("fp32", "bf16", "int8", "float16")
SUPPORTED = {"keras": ("fp32",), "onnxruntime": ("fp32", "int8"), "litert": ("fp32", "float16", "int8"),
             "openvino": ("fp32", "bf16", "int8")}
# Card tasks whose runtime can run from an exported graph (others always use the keras backend).
EXPORTED_TASKS = ("attributes", "expression", "detection", "verification")
DETECTOR_PRECISIONS = ("fp32", "bf16", "float16")  # the detector has no calibrated int8 graph
# Face embeddings: fp32 only (a quantized embedding moves every distance; its threshold was chosen in fp32).
EMBEDDER_PRECISIONS = ("fp32",)
_MODULES = {"keras": ("tensorflow", "keras"), "onnxruntime": ("onnxruntime",), "litert": ("ai_edge_litert",),
            "openvino": ("openvino",)}
_EXTRAS = {"keras": "cpu", "onnxruntime": "lite", "litert": "litert", "openvino": "openvino"}
AUTO_ORDER = ("onnxruntime", "openvino", "litert", "keras")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset:
    """The CPU's feature flags (``avx512_bf16``, ``amx_int8`` ...) from ``/proc/cpuinfo``; empty where unreadable."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def importable(module: str) -> bool:
    """Whether ``module`` can be found (without importing it); a finder that refuses it counts as absent."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed(backend: str) -> bool:
    """Whether the Python packages of ``backend`` are importable (checked without importing them)."""
    return all(importable(m) for m in _MODULES[backend])


def available_backends() -> list[str]:
    """Installed backends, in the default order."""
    return [b for b in AUTO_ORDER if installed(b)]


def require(backend: str):
    """Raises ``MissingDependencyError`` naming the extra unless ``backend``'s packages are installed."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} (or auto)")
    if not installed(backend):
        missing = [m for m in _MODULES[backend] if not importable(m)]
        raise MissingDependencyError(f"backend {backend!r} needs {', '.join(missing)}, which is not installed; "
                                     f"install it with pip install \"facezoo[{_EXTRAS[backend]}]\"")


def precision_supported(backend: str, precision: str, flags=None) -> str | None:
    """None if ``backend`` runs ``precision`` on this CPU, else the reason it does not."""
    if precision not in SUPPORTED[backend]:
        return f"backend {backend!r} runs {', '.join(SUPPORTED[backend])}, not {precision!r}"
    if precision == "bf16":
        flags = cpu_flags() if flags is None else flags
        if not any(f in flags for f in BF16_FLAGS):
            return f"bf16 needs a CPU with {' or '.join(BF16_FLAGS)} (this one has neither in /proc/cpuinfo)"
    return None


def resolve(task: str, backend: str | None = None, precision: str | None = None, *, card=None,
            directory: str | None = None) -> tuple[str, str]:
    """The ``(backend, precision)`` a load runs with; see the module docstring for the defaults.

    Raises:
        UsageError: an unknown name or a combination the backend or CPU cannot run.
        MissingDependencyError: the backend named is not installed.
    """
    explicit = precision is not None
    backend = backend or os.environ.get("FACEZOO_BACKEND") or "auto"
    precision = precision or os.environ.get("FACEZOO_PRECISION") or "fp32"
    if task == "detection" and not explicit and precision not in DETECTOR_PRECISIONS:
        precision = "fp32"  # a process-wide int8 default applies to the attribute models
    if task == "verification" and (not explicit or precision == "auto"):
        precision = "fp32"
    if precision not in (*PRECISIONS, "auto"):
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)} (or auto)")
    if backend != "auto" and backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} (or auto)")
    if task not in EXPORTED_TASKS:
        if backend not in ("auto", "keras") or precision not in ("auto", "fp32"):
            raise UsageError(f"models of task {task!r} run on the keras backend in fp32 only")
        return "keras", "fp32"
    flags = cpu_flags()
    if backend == "auto":
        candidates = [b for b in AUTO_ORDER if installed(b) and (b != "litert" or installed("keras"))]
        if not candidates:
            raise MissingDependencyError("no backend is installed; install one with pip install \"facezoo[lite]\" "
                                         "(ONNX Runtime, no TensorFlow) or \"facezoo[cpu]\" (TensorFlow)")
        if card is not None and directory is not None and "keras" in candidates:
            # auto never builds: an exported backend is chosen when its graph is shipped or cached already.
            ready = [b for b in candidates if b == "keras" or graph_ready(directory, card, b, "fp32")]
            candidates = ready or candidates
        if precision == "auto" and "openvino" in candidates and not precision_supported("openvino", "bf16", flags) \
                and task != "detection":
            return "openvino", "bf16"
        backend = candidates[0]
    require(backend)
    if precision == "auto":
        precision = _auto_precision(task, backend, flags, card)
    if task == "detection" and precision not in DETECTOR_PRECISIONS:
        raise UsageError(f"the detector runs {', '.join(p for p in DETECTOR_PRECISIONS if p in SUPPORTED[backend])} "
                         f"on {backend}, not {precision!r} (no calibrated int8 detector graph)")
    if task == "verification" and precision not in EMBEDDER_PRECISIONS:
        raise UsageError(f"face-verification models run fp32 only, not {precision!r} (the same-person threshold was "
                         "chosen on fp32 embeddings)")
    problem = precision_supported(backend, precision, flags)
    if problem:
        raise UsageError(problem)
    return backend, precision


def _auto_precision(task, backend, flags, card) -> str:
    if task == "detection":
        return "fp32"
    if backend == "openvino" and not precision_supported(backend, "bf16", flags):
        return "bf16"
    if "int8" in SUPPORTED[backend] and any(f in flags for f in VNNI_FLAGS):
        if backend == "litert" or card is None or _shipped_graph(card, "onnx", "int8") is not None:
            return "int8"
    return "fp32"


# ----------------------------------------------------------------------------- where graphs live
def cache_root() -> str:
    """The user cache of built graphs (``$FACEZOO_CACHE``, ``$XDG_CACHE_HOME/facezoo``, ``~/.cache/facezoo``)."""
    root = os.environ.get("FACEZOO_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "facezoo")
    return root


def graph_kind(backend: str, precision: str) -> tuple[str, str]:
    """``(format, graph precision)`` a backend reads: OpenVINO reads the ONNX files (bf16 is a runtime hint)."""
    fmt = "tflite" if backend == "litert" else "onnx"
    return fmt, ("fp32" if precision == "bf16" else precision)


def _shipped_graph(card, fmt, precision, directory=None):
    entry = card.graphs.get(f"{fmt}/{precision}")
    if not entry or entry.get("source_sha256") != card.sha256:
        return None
    if directory is None:
        return entry
    path = os.path.join(directory, entry["file"])
    return path if os.path.isfile(path) else None


def _verify(path: str, expected: str, what: str):
    from facezoo.errors import ChecksumError
    from facezoo.files import sha256_of
    digest = sha256_of(path)
    if digest != expected:
        raise ChecksumError(f"{what}: sha256 of {path} is {digest[:16]}..., expected {expected[:16]}... "
                            "(tampered or corrupt file); delete it to rebuild, or reinstall facezoo")


def graph_ready(directory: str, card, backend: str, precision: str) -> bool:
    """Whether ``backend``'s graph at ``precision`` is shipped (for these weights) or cached, so nothing is built."""
    if backend == "keras":
        return True
    fmt, gp = graph_kind(backend, precision)
    path = cached_graph_path(card, fmt, gp)
    return _shipped_graph(card, fmt, gp, directory) is not None or (
        os.path.isfile(path) and os.path.isfile(path + ".json"))


def cached_graph_path(card, fmt: str, precision: str) -> str:
    """Where the cache keeps ``card``'s graph (one folder per weights sha256)."""
    ext = {"onnx": "onnx", "tflite": "tflite"}[fmt]
    return os.path.join(cache_root(), card.sha256, f"{card.name}_{fmt}_{precision}.{ext}")


def graph_path(directory: str, card, backend: str, precision: str, *, calibration=None, build: bool = True) -> str:
    """The checksum-verified graph file ``backend`` runs at ``precision``: shipped, cached, or built now.

    Raises:
        ModelFileError / ChecksumError: a shipped or cached file fails its checksum.
        MissingDependencyError: the graph must be built and TensorFlow (or tf2onnx) is not installed.
        UsageError: an int8 graph must be built and no ``calibration`` images were given.
    """
    fmt, gp = graph_kind(backend, precision)
    shipped = _shipped_graph(card, fmt, gp, directory)
    if shipped is not None:
        _verify(shipped, card.graphs[f"{fmt}/{gp}"]["sha256"], f"{card.name} {fmt} {gp} graph")
        return shipped
    path = cached_graph_path(card, fmt, gp)
    sidecar = path + ".json"
    if os.path.isfile(path) and os.path.isfile(sidecar):
        try:
            with open(sidecar) as f:
                info = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{sidecar}: unreadable ({e}); delete it to rebuild the graph") from None
        _verify(path, info.get("sha256", ""), f"{card.name} cached {fmt} {gp} graph")
        return path
    if not build:
        raise ModelFileError(f"{card.name}: no {fmt} {gp} graph is shipped or cached")
    from facezoo.backends.build import build_graph
    return build_graph(directory, card, fmt, gp, path, calibration=calibration)


# ----------------------------------------------------------------------------- loading
def load_exported(directory: str, card, backend: str, precision: str, *, calibration=None,
                  threads: int | None = None):
    """The runtime of ``card`` with its network run by ``backend`` at ``precision`` (``facezoo.load`` calls it)."""
    from facezoo.backends.runners import make_runner
    path = graph_path(directory, card, backend, precision, calibration=calibration)
    runner = make_runner(backend, path, precision, threads=threads,
                         optimized=_optimized_path(card, path) if backend == "onnxruntime" else None)
    if card.task == "detection":
        from facezoo.face.detect import ExportedRetinaFaceDetector
        settings = card.architecture.get("detector", {})
        return ExportedRetinaFaceDetector(runner, backend, precision,
                                          **{k: v for k, v in settings.items()
                                             if k in ("working_size", "nms_threshold")})
    if card.task == "verification":
        from facezoo.backends.model import ExportedFaceEmbedder
        return ExportedFaceEmbedder(card, runner, backend=backend, precision=precision, path=path,
                                    directory=directory)
    from facezoo.backends.model import ExportedModel
    return ExportedModel(card, runner, backend=backend, precision=precision, path=path)


def _optimized_path(card, graph: str) -> str | None:
    """Where ONNX Runtime's optimised copy of ``graph`` is cached: keyed by the graph, ORT's version and the CPU
    (the optimised graph holds layout choices for this CPU). None when the cache cannot be written."""
    import hashlib
    try:
        import onnxruntime
        version = onnxruntime.__version__
    except ImportError:
        return None
    cpu = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:12]
    folder = os.path.join(cache_root(), card.sha256)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    stem = os.path.splitext(os.path.basename(graph))[0]
    graph_id = hashlib.sha256(f"{graph}:{os.path.getsize(graph)}:{os.path.getmtime(graph)}".encode()).hexdigest()[:12]
    return os.path.join(folder, f"{card.name}_{stem}.ort{version}-cpu{cpu}-{graph_id}.onnx")


def describe_default() -> str:
    """One line: installed backends, the default, and the CPU features that decide ``precision="auto"``."""
    flags = cpu_flags()
    have = [f for f in (*BF16_FLAGS, *VNNI_FLAGS) if f in flags]
    try:
        default = resolve("attributes")
    except UsageError as e:
        default = str(e)
    return (f"installed: {', '.join(available_backends()) or 'none'}; default {default}; "
            f"CPU: {', '.join(have) or 'no bf16/VNNI flags'}")


def _log(message: str):
    print(f"facezoo: {message}", file=sys.stderr, flush=True)
