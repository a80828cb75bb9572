"""Inference without TensorFlow: load, predict, analyze and the CLI in a process where TensorFlow cannot import.

A ``sys.meta_path`` finder refuses ``tensorflow``, ``keras`` and ``tf_keras`` (as in a ``facezoo[lite]`` install, which
has neither), then the process runs the shipped ONNX graphs through ONNX Runtime and prints its answers, which the
test compares with the Keras backend's in this process (same decisions, probabilities within 2e-3: analyze's
alignment may move a pixel by a grey level on a rounding tie).
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

import facezoo
from tests.backends.compare import attribute_differences
from tests.helpers import REPO

pytest.importorskip("onnxruntime")

BLOCK = '''
import sys
class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, NoTensorFlow())
'''

SCRIPT = BLOCK + '''
import json, os
import facezoo
from facezoo import cli
from facezoo.errors import MissingDependencyError
out = {}
model = facezoo.load("dmtl_celeba")
out["repr"] = repr(model)
out["predict"] = model.predict(facezoo.sample_image())
out["expression"] = facezoo.load("expression_fer").predict(facezoo.sample_image(), check_face=False)
out["analyze"] = facezoo.analyze(facezoo.sample_photo())
embedder = facezoo.load("verify_face")
out["embedder"] = repr(embedder)
out["embedding"] = embedder.embed(facezoo.sample_image()).tolist()
out["verify"] = facezoo.verify(facezoo.sample_photo(), facezoo.sample_image())
try:
    facezoo.load("dmtl_celeba", backend="keras")
except MissingDependencyError as e:
    out["keras_error"] = str(e)
out["cli_predict"] = cli.main(["predict", facezoo.sample_image(), "--jsonl", "--model", "dmtl_utkface"])
out["cli_analyze"] = cli.main(["analyze", facezoo.sample_photo(), "--json", os.environ["ANALYZE_JSON"]])
out["cli_keras"] = cli.main(["predict", facezoo.sample_image(), "--backend", "keras"])
out["cli_list"] = cli.main(["list"])
out["tensorflow_imported"] = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def lite_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lite")
    env = {**os.environ, "PYTHONPATH": REPO, "ANALYZE_JSON": str(folder / "analyze.json"),
           "FACEZOO_CACHE": str(folder / "cache")}
    env.pop("FACEZOO_BACKEND", None)
    env.pop("FACEZOO_PRECISION", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), done, folder


def test_nothing_imports_tensorflow(lite_run):
    out, _done, folder = lite_run
    assert out["tensorflow_imported"] == []
    assert "onnxruntime" in out["repr"]
    cache = folder / "cache"
    built = [f for _d, _s, fs in os.walk(cache) for f in fs if ".ort" not in f]
    assert built == []  # shipped graphs: nothing was built (only ONNX Runtime's optimised copies are cached)
    assert any(".ort" in f for _d, _s, fs in os.walk(cache) for f in fs)


def test_predict_and_analyze_answer(lite_run):
    out, done, folder = lite_run
    assert out["predict"]["face_found"] is True and "Smiling" in out["predict"]["attributes"]
    assert set(out["expression"]["attributes"]["expression"]["scores"]) >= {"happiness", "contempt"}
    faces = out["analyze"]["faces"]
    assert len(faces) == 1 and {"age", "gender", "Smiling", "expression"} <= set(faces[0]["attributes"])
    assert out["cli_predict"] == 0 and out["cli_analyze"] == 0 and out["cli_list"] == 0
    written = json.load(open(folder / "analyze.json"))
    assert written[0]["faces"][0]["faceRectangle"] == faces[0]["faceRectangle"]
    jsonl = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert jsonl and "age" in jsonl[0]["attributes"]


def test_face_verification_runs_from_its_graph(lite_run):
    out, _done, _folder = lite_run
    assert "ExportedFaceEmbedder" in out["embedder"] and "onnxruntime" in out["embedder"]
    assert out["verify"]["same"] is True and out["verify"]["distance"] < out["verify"]["threshold"]
    if importlib.util.find_spec("tensorflow") is not None:
        import numpy as np
        want = facezoo.load("verify_face", backend="keras").embed(facezoo.sample_image())
        assert np.abs(np.asarray(out["embedding"]) - want).max() < 1e-5


def test_keras_backend_says_which_extra_to_install(lite_run):
    out, done, _folder = lite_run
    assert 'pip install "facezoo[cpu]"' in out["keras_error"]
    assert out["cli_keras"] == 2
    line = next(x for x in done.stderr.splitlines() if x.startswith("facezoo predict: error:"))
    assert "facezoo[cpu]" in line and "Traceback" not in done.stderr


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="compares with the Keras backend")
def test_answers_equal_the_keras_backend(lite_run):
    out, _done, _folder = lite_run
    want = facezoo.load("dmtl_celeba", backend="keras").predict(facezoo.sample_image())
    dp, changed, _ = attribute_differences(want["attributes"], out["predict"]["attributes"])
    assert changed == 0 and dp <= 2e-4
    photo = facezoo.analyze(facezoo.sample_photo(), backend="keras")
    assert photo["faces"][0]["faceRectangle"] == out["analyze"]["faces"][0]["faceRectangle"]
    dp, changed, _ = attribute_differences(photo["faces"][0]["attributes"], out["analyze"]["faces"][0]["attributes"])
    assert changed == 0 and dp <= 2e-3
