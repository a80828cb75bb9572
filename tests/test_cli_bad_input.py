"""Bad input through the command line and the API: a damaged data set in ``evaluate``, a bad file among good
ones, an interrupted ``predict``, and a bounded fuzz of ``predict`` itself. Never a traceback or lost results."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facezoo import cli, zoo
from tests.helpers import package_tiny


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    folder, _ = package_tiny(str(root))
    return str(root), folder


@pytest.fixture
def registry(monkeypatch, exported):
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", exported[0])


def _val_file(root):
    from facezoo.data import READERS
    from facezoo.data.splits import split_records
    records = split_records(READERS["celeba"](str(root)).records(), 20)
    return next(r.image for r in records if r.split == "val")


def test_evaluate_names_a_corrupt_image_in_the_data_folder(registry, celeba_layout, capsys):
    root, _names, _values = celeba_layout(n=30)
    bad = _val_file(root)
    with open(bad, "r+b") as f:
        f.truncate(40)  # a JPEG header and nothing else
    assert cli.main(["evaluate", "tiny_model", "--data-dir", str(root), "--no-latency"]) == 2
    err = capsys.readouterr().err
    assert bad in err and "Traceback" not in err and err.count("\n") == 1


def test_evaluate_names_a_damaged_shard(registry, celeba_layout, tmp_path, capsys):
    root, _names, _values = celeba_layout(n=30)
    records = tmp_path / "records"
    assert cli.main(["data", "convert", "celeba", "--root", str(root), "--out", str(records), "--val-percent", "20",
                     "--image-size", "40x32", "--shards", "1", "--no-progress"]) == 0
    manifest = json.loads((records / "manifest.json").read_text())
    shard = records / manifest["splits"]["val"]["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    capsys.readouterr()
    assert cli.main(["evaluate", "tiny_model", "--data-dir", str(records), "--no-latency"]) == 2
    err = capsys.readouterr().err
    assert shard.name in err and "damaged" in err and "Traceback" not in err


def test_an_interrupted_predict_keeps_the_finished_results(registry, exported, tmp_path, monkeypatch, capsys):
    from PIL import Image

    from facezoo.inference.face_model import FaceModel
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((40, 32, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    real, calls = FaceModel.predict, []

    def predict_then_interrupt(self, images, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, images, **kwargs)

    monkeypatch.setattr(FaceModel, "predict", predict_then_interrupt)
    out = tmp_path / "out.json"
    assert cli.main(["predict", str(folder), "--model", "tiny_model", "--batch-size", "2", "--json", str(out)]) == 130
    results = json.loads(out.read_text())
    assert [r["input"].rsplit("/", 1)[-1] for r in results] == ["0.png", "1.png"]
    assert not list(tmp_path.glob("out.json.tmp*"))


_inputs = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda h, w, c, seed: np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8),
              st.integers(1, 64), st.integers(1, 64), st.sampled_from([1, 2, 3, 4, 5]), st.integers(0, 99)),
    st.builds(lambda v, shape: np.full(shape, v, np.float32), st.floats(allow_nan=True, allow_infinity=True),
              st.sampled_from([(16, 16), (16, 16, 3), (3, 16, 16)])),
    st.text(max_size=30), st.integers(), st.none())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_inputs, min_size=1, max_size=4))
def test_predict_collects_an_answer_or_an_error_for_anything(exported, items):
    model = _tiny(exported[1])
    results = model.predict(items, errors="collect", batch_size=3)
    assert len(results) == len(items)
    for r in results:
        assert ("attributes" in r) != ("error" in r)
        json.dumps(r)


_MODELS = {}


def _tiny(folder):
    if folder not in _MODELS:
        _MODELS[folder] = zoo.load("tiny_model", directory=folder)
    return _MODELS[folder]
