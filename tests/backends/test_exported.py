"""Exported-graph backends give FaceModel's answers; shipped and cached graphs are verified and kept fresh."""
import importlib.util
import json
import os
import shutil

import numpy as np
import pytest

import facezoo
from facezoo import backends
from facezoo.errors import ChecksumError, ModelFileError, UsageError
from tests.backends.compare import results_differences as _compare
from tests.helpers import data_dir

pytest.importorskip("onnxruntime")
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
# fp32 graphs compute the Keras function to ~1e-5 in logits; predict rounds probabilities to 4 decimals.
FP32_TOLERANCE = 2e-4


def _crops(n=24):
    root = data_dir("celeba")
    if root is None:
        pytest.skip("needs ../shared/data/celeba")
    folder = os.path.join(root, "img_align_celeba")
    names = sorted(os.listdir(folder))
    return [os.path.join(folder, names[i]) for i in np.linspace(0, len(names) - 1, n).astype(int)]


@needs_tf
@pytest.mark.real_data
@pytest.mark.parametrize("name", ["dmtl_celeba", "dmtl_utkface"])
def test_onnxruntime_fp32_gives_the_keras_answers(name):
    crops = _crops()
    keras_model = facezoo.load(name, backend="keras")
    ort_model = facezoo.load(name, backend="onnxruntime", precision="fp32")
    assert ort_model.path.endswith("model.onnx")  # the shipped graph, not a build
    a = keras_model.predict(crops, check_face=False)
    b = ort_model.predict(crops, check_face=False)
    assert [r["input"] for r in a] == [r["input"] for r in b]
    assert list(a[0]["attributes"]) == list(b[0]["attributes"])
    dp, changed, total = _compare(a, b)
    assert changed == 0 and total > 0
    assert dp <= FP32_TOLERANCE


@needs_tf
def test_expression_scores_and_face_check_on_the_bundled_crop():
    sample = facezoo.sample_image()
    a = facezoo.load("expression_fer", backend="keras").predict(sample)
    b = facezoo.load("expression_fer", backend="onnxruntime").predict(sample)
    assert b["face_found"] is True and abs(a["face_score"] - b["face_score"]) < 1e-3
    scores_a, scores_b = a["attributes"]["expression"]["scores"], b["attributes"]["expression"]["scores"]
    assert list(scores_a) == list(scores_b) and scores_b["contempt"] == 0.0
    assert max(abs(scores_a[k] - scores_b[k]) for k in scores_a) <= FP32_TOLERANCE


@pytest.mark.real_data
def test_shipped_int8_graph_keeps_decisions():
    crops = _crops(40)
    fp32 = facezoo.load("dmtl_celeba", backend="onnxruntime").predict(crops, check_face=False)
    int8 = facezoo.load("dmtl_celeba", backend="onnxruntime", precision="int8")
    assert int8.path.endswith("model_int8.onnx")
    dp, changed, total = _compare(fp32, int8.predict(crops, check_face=False))
    assert changed / total <= 0.02  # the validation split keeps >= 99.5% (benchmarks/results/inference_*.json)
    assert 0 < dp < 0.3  # int8 is not fp32: some probability moves, none by much


@needs_tf
@pytest.mark.real_data
def test_analyze_on_onnxruntime_equals_keras():
    root = data_dir("lfw")
    if root is None:
        pytest.skip("needs ../shared/data/lfw")
    photos = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".jpg"))[:6]
    a = facezoo.analyze(photos, backend="keras")
    b = facezoo.analyze(photos, backend="onnxruntime")
    assert [len(r["faces"]) for r in a] == [len(r["faces"]) for r in b] and sum(len(r["faces"]) for r in a) >= 6
    for x, y in zip(a, b):
        for fx, fy in zip(x["faces"], y["faces"]):
            assert fx["faceRectangle"] == fy["faceRectangle"]
            dp, changed, _ = _compare([fx], [fy])
            assert changed == 0 and dp <= 2e-3  # alignment can move a pixel by one grey level on a rounding tie


def test_onnxruntime_reuses_its_optimised_graph(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    sample = facezoo.sample_image()
    first = facezoo.load("expression_fer", backend="onnxruntime")
    copies = [os.path.join(d, f) for d, _s, fs in os.walk(tmp_path) for f in fs]
    assert len(copies) == 1 and ".ort" in copies[0]
    mtime = os.path.getmtime(copies[0])
    second = facezoo.load("expression_fer", backend="onnxruntime")
    assert os.path.getmtime(copies[0]) == mtime
    assert first.predict(sample, check_face=False) == second.predict(sample, check_face=False)
    with open(copies[0], "wb") as f:
        f.write(b"damaged")
    third = facezoo.load("expression_fer", backend="onnxruntime")  # rebuilt from the verified graph
    assert third.predict(sample, check_face=False) == first.predict(sample, check_face=False)


def test_exported_model_has_no_keras_model():
    model = facezoo.load("dmtl_celeba", backend="onnxruntime")
    with pytest.raises(UsageError, match="backend=\"keras\""):
        model.model  # noqa: B018
    assert "onnxruntime" in repr(model)


def _copy_model(tmp_path, name="expression_fer"):
    target = tmp_path / name
    shutil.copytree(facezoo.zoo.model_dir(name), target)
    return str(target)


def test_tampered_shipped_graph_fails_its_checksum(tmp_path):
    folder = _copy_model(tmp_path)
    with open(os.path.join(folder, "model.onnx"), "r+b") as f:
        f.seek(-100, os.SEEK_END)
        f.write(b"\0" * 10)
    with pytest.raises(ChecksumError, match="model.onnx"):
        facezoo.load("expression_fer", directory=folder, backend="onnxruntime")


def test_graph_of_other_weights_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    folder = _copy_model(tmp_path)
    card_path = os.path.join(folder, "card.json")
    card = json.load(open(card_path))
    card["graphs"]["onnx/fp32"]["source_sha256"] = "0" * 64  # as if the model had been retrained since
    json.dump(card, open(card_path, "w"))
    loaded = facezoo.zoo.ModelCard.from_json(card_path)
    assert not backends.graph_ready(folder, loaded, "onnxruntime", "fp32")
    with pytest.raises(ModelFileError, match="no onnx fp32 graph is shipped or cached"):
        backends.graph_path(folder, loaded, "onnxruntime", "fp32", build=False)


@needs_tf
@pytest.mark.slow
def test_graphs_are_built_once_into_the_cache_keyed_by_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    folder = _copy_model(tmp_path, "retinaface_mnet025")
    card_path = os.path.join(folder, "card.json")
    data = json.load(open(card_path))
    data["graphs"] = {}  # nothing shipped: the first load builds the graph
    json.dump(data, open(card_path, "w"))
    card = facezoo.zoo.ModelCard.from_json(card_path)
    detector = facezoo.load("retinaface_mnet025", directory=folder, backend="onnxruntime")
    path = backends.cached_graph_path(card, "onnx", "fp32")
    assert os.path.dirname(path) == os.path.join(str(tmp_path / "cache"), card.sha256)
    cached = sorted(f for f in os.listdir(os.path.dirname(path)) if ".ort" not in f)  # not ORT's optimised copy
    assert cached == sorted([os.path.basename(path), os.path.basename(path) + ".json"])  # no temporary file left
    info = json.load(open(path + ".json"))
    assert info["source_sha256"] == card.sha256 and info["sha256"] == facezoo.files.sha256_of(path)
    image = facezoo.images.load_image(facezoo.sample_photo())
    want = facezoo.load("retinaface_mnet025", backend="keras").detect([image])[0]
    got = detector.detect([image])[0]
    assert len(got) == len(want) == 1
    np.testing.assert_allclose(got[0].box, want[0].box, atol=0.05)
    np.testing.assert_allclose(got[0].landmarks, want[0].landmarks, atol=0.05)
    mtime = os.path.getmtime(path)
    facezoo.load("retinaface_mnet025", directory=folder, backend="onnxruntime")  # from the cache, not rebuilt
    assert os.path.getmtime(path) == mtime
    with open(path, "r+b") as f:
        f.seek(-50, os.SEEK_END)
        f.write(b"\xff" * 8)
    with pytest.raises(ChecksumError, match="delete it to rebuild"):
        facezoo.load("retinaface_mnet025", directory=folder, backend="onnxruntime")


def test_int8_build_without_calibration_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    folder = _copy_model(tmp_path)
    card_path = os.path.join(folder, "card.json")
    card = json.load(open(card_path))
    del card["graphs"]["onnx/int8"]
    json.dump(card, open(card_path, "w"))
    with pytest.raises(UsageError, match="calibration=DIR"):
        facezoo.load("expression_fer", directory=folder, backend="onnxruntime", precision="int8")


@pytest.mark.parametrize("name", ["dmtl_celeba", "dmtl_utkface", "expression_fer", "retinaface_mnet025"])
def test_shipped_graphs_are_listed_on_the_card_and_small(name):
    card = facezoo.model_card(name)
    assert "onnx/fp32" in card.graphs
    for key, entry in card.graphs.items():
        path = os.path.join(facezoo.zoo.model_dir(name), entry["file"])
        assert entry["source_sha256"] == card.sha256, f"{key} was built from other weights: rerun the recipe"
        assert card.files[entry["file"]] == entry["sha256"] == facezoo.files.sha256_of(path)
        assert os.path.getsize(path) <= 15 * 1024 * 1024


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs openvino (facezoo[openvino])")
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_openvino_reads_the_shipped_graphs(precision):
    sample = facezoo.sample_image()
    want = facezoo.load("dmtl_celeba", backend="onnxruntime", precision=precision).predict(sample, check_face=False)
    got = facezoo.load("dmtl_celeba", backend="openvino", precision=precision).predict(sample, check_face=False)
    dp, changed, _ = _compare([want], [got])
    assert dp <= (FP32_TOLERANCE if precision == "fp32" else 0.05) and changed <= 1


@needs_tf
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="needs ai-edge-litert")
def test_litert_builds_a_dynamic_batch_graph(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    sample = facezoo.sample_image()
    want = facezoo.load("expression_fer", backend="onnxruntime").predict([sample] * 3, check_face=False)
    model = facezoo.load("expression_fer", backend="litert")
    assert model.runner.dynamic_batch
    dp, changed, _ = _compare(want, model.predict([sample] * 3, check_face=False))
    assert dp <= FP32_TOLERANCE and changed == 0


def test_physical_cores_counts_hyperthread_siblings_once():
    from facezoo.backends.runners import physical_cores
    cores = physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="needs ai-edge-litert")
def test_litert_runs_one_thread_per_physical_core_unless_told(monkeypatch):
    # The interpreter's own default is a single thread (batch 1 of dmtl_celeba: 2.47 ms vs 1.48 with two cores).
    from ai_edge_litert import interpreter as litert
    from facezoo.backends import runners
    seen = []

    class Recorder:
        def __init__(self, model_path, num_threads=None):
            seen.append(num_threads)
            raise ValueError("recorded")

    monkeypatch.setattr(litert, "Interpreter", Recorder)
    monkeypatch.setattr(runners, "physical_cores", lambda: 3)
    for threads, want in ((None, 3), (1, 1)):
        with pytest.raises(ModelFileError, match="recorded"):
            runners.LiteRTRunner("x.tflite", threads)
        assert seen[-1] == want
