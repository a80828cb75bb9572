"""ONNX and TFLite exports of a tiny DMTL model against its Keras outputs (need the ``export`` extra)."""
import numpy as np
import pytest

import facezoo
from facezoo.attributes import CELEBA_40, UTKFACE
from facezoo.export import export_model
from facezoo.models.dmtl import HeadSpec
from tests.helpers import package_tiny

pytestmark = pytest.mark.slow  # a conversion per test (a few seconds each)


@pytest.fixture(scope="module")
def tiny_face_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    three = [a for a in CELEBA_40.attributes if a.name in ("Male", "Smiling", "Young")]
    datasets = {"celeba": three, "utkface": [HeadSpec(UTKFACE["age"], tolerance=5), UTKFACE["gender"]]}
    folder, _card = package_tiny(str(root), datasets=datasets)
    fm = facezoo.load("tiny_model", directory=folder)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 50, 40, 3)).astype(np.float32)
    x = np.stack([fm.preprocess(im) for im in images])
    return fm, x, str(root / "out")


def _max_diff(got, want):
    assert set(got) == set(want)
    return max(float(np.abs(got[k] - want[k]).max()) for k in want)


def test_onnx_matches_keras(tiny_face_model):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    import onnx

    from facezoo.export.onnx import onnx_runner
    fm, x, out = tiny_face_model
    path = export_model(fm, format="onnx", out=out)
    onnx.checker.check_model(onnx.load(path))
    assert _max_diff(onnx_runner(path)(x[:8]), fm.logits(x[:8])) <= 1e-4


def test_onnx_weights_stored_as_float16_still_compute_in_float32(tiny_face_model, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    import os

    import onnx

    from facezoo.export.onnx import onnx_runner, store_float16
    fm, x, out = tiny_face_model
    path = export_model(fm, format="onnx", out=str(tmp_path / "plain"))
    half = str(tmp_path / "half.onnx")
    done = store_float16(path, half, min_elements=64)
    assert done["converted"] > 0 and done["size_bytes"] < 0.7 * os.path.getsize(path)
    graph = onnx.load(half).graph
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer) == done["converted"]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    got, want = onnx_runner(half)(x[:8]), onnx_runner(path)(x[:8])
    assert all(v.dtype == np.float32 for v in got.values())
    assert 0 < _max_diff(got, want) <= 2e-2  # float16 rounding of the weights only


@pytest.mark.parametrize("quantize, tolerance", [(None, 1e-4), ("float16", 2e-2), ("dynamic", 0.2)])
def test_tflite_matches_keras(tiny_face_model, quantize, tolerance):
    pytest.importorskip("ai_edge_litert")
    from facezoo.export.tflite import tflite_runner
    fm, x, out = tiny_face_model
    path = export_model(fm, format="tflite", out=out, quantize=quantize)
    assert path.endswith(f"tiny_model{'_' + quantize if quantize else ''}.tflite")
    assert _max_diff(tflite_runner(path)(x[:8]), fm.logits(x[:8])) <= tolerance


def test_tflite_int8_calibrates_on_images_and_refuses_too_few(tiny_face_model, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from PIL import Image

    from facezoo.errors import UsageError
    from facezoo.export.tflite import MIN_CALIBRATION_IMAGES, tflite_runner, write_tflite
    fm, x, out = tiny_face_model
    with pytest.raises(UsageError, match="too few"):
        write_tflite(fm.model, fm.card.spec, str(tmp_path / "m.tflite"), quantize="int8",
                     calibration=x[:MIN_CALIBRATION_IMAGES - 1])
    folder = tmp_path / "faces"
    folder.mkdir()
    for i, im in enumerate(((x + 1) * 127.5).round().astype(np.uint8)):
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    path = export_model(fm, format="tflite", out=out, quantize="int8", calibration=str(folder))
    got, want = tflite_runner(path)(x[:8]), fm.logits(x[:8])
    assert all(np.isfinite(v).all() for v in got.values())
    # int8 logits of a random network: close in scale, not equal (accuracy is measured in benchmarks/).
    assert _max_diff(got, want) <= 0.25 * max(float(np.abs(v).max()) for v in want.values()) + 0.1
