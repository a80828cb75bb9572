"""Choosing a backend and precision: names, CPU flags, installed packages, clear errors."""
import pytest

from facezoo import backends
from facezoo.errors import MissingDependencyError, UsageError

ZEN4 = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})
OLD = frozenset({"avx2", "fma"})


@pytest.fixture
def flags(monkeypatch):
    def set_flags(value):
        monkeypatch.setattr(backends, "cpu_flags", lambda path="/proc/cpuinfo": value)
    return set_flags


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16 amx_int8\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert backends.cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16", "amx_int8"}
    assert backends.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_unknown_names_are_one_line_usage_errors():
    with pytest.raises(UsageError, match="unknown backend 'tensorrt'"):
        backends.resolve("attributes", "tensorrt")
    with pytest.raises(UsageError, match="unknown precision 'int4'"):
        backends.resolve("attributes", "keras", "int4")


def test_backend_runs_only_its_precisions():
    with pytest.raises(UsageError, match="backend 'keras' runs fp32, not 'int8'"):
        backends.resolve("attributes", "keras", "int8")
    with pytest.raises(UsageError, match="not 'bf16'"):
        backends.resolve("attributes", "onnxruntime", "bf16")


def test_bf16_needs_the_cpu_flag(flags, monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda b: True)
    flags(OLD)
    with pytest.raises(UsageError, match="bf16 needs a CPU with avx512_bf16 or amx_bf16"):
        backends.resolve("attributes", "openvino", "bf16")
    flags(ZEN4)
    assert backends.resolve("attributes", "openvino", "bf16") == ("openvino", "bf16")


def test_auto_precision_follows_the_cpu(flags, monkeypatch):
    monkeypatch.setattr(backends, "installed", lambda b: b in ("onnxruntime", "keras"))
    flags(ZEN4)
    assert backends.resolve("attributes", "onnxruntime", "auto") == ("onnxruntime", "int8")
    flags(OLD)
    assert backends.resolve("attributes", "onnxruntime", "auto") == ("onnxruntime", "fp32")
    monkeypatch.setattr(backends, "installed", lambda b: True)
    flags(ZEN4)
    assert backends.resolve("attributes", None, "auto") == ("openvino", "bf16")
    assert backends.resolve("detection", None, "auto")[1] == "fp32"  # no int8 detector graph


def test_default_is_the_first_installed_with_a_ready_graph(monkeypatch, tmp_path):
    import facezoo
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(backends, "installed", lambda b: b in ("onnxruntime", "keras"))
    card = facezoo.model_card("dmtl_celeba")
    directory = facezoo.zoo.model_dir("dmtl_celeba")
    assert backends.resolve("attributes") == ("onnxruntime", "fp32")
    assert backends.resolve(card.task, card=card, directory=directory) == ("onnxruntime", "fp32")
    card.graphs = {}  # no shipped graph and nothing cached: the default does not build one, Keras runs it
    assert backends.resolve(card.task, card=card, directory=directory) == ("keras", "fp32")
    monkeypatch.setenv("FACEZOO_BACKEND", "keras")
    assert backends.resolve("attributes") == ("keras", "fp32")


def test_tasks_without_exported_graphs_run_on_keras():
    assert backends.resolve("generator") == ("keras", "fp32")
    with pytest.raises(UsageError, match="task 'generator' run on the keras backend"):
        backends.resolve("generator", "onnxruntime")
    with pytest.raises(UsageError, match="no calibrated int8 detector graph"):
        backends.resolve("detection", "onnxruntime", "int8")


def test_face_embeddings_run_fp32_whatever_the_process_default(monkeypatch):
    monkeypatch.setenv("FACEZOO_PRECISION", "int8")  # a process-wide int8 default is for the attribute models
    assert backends.resolve("verification", "onnxruntime") == ("onnxruntime", "fp32")
    assert backends.resolve("verification", "onnxruntime", "auto") == ("onnxruntime", "fp32")
    with pytest.raises(UsageError, match="face-verification models run fp32 only"):
        backends.resolve("verification", "onnxruntime", "int8")


def test_a_missing_backend_names_its_extra(monkeypatch):
    real = backends.importable
    monkeypatch.setattr(backends, "importable", lambda name: name != "openvino" and real(name))
    with pytest.raises(MissingDependencyError, match=r'pip install "facezoo\[openvino\]"'):
        backends.resolve("attributes", "openvino")
