"""Registry, model cards, checksums and FaceModel.predict on a tiny packaged model."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from facezoo import zoo
from facezoo.files import sha256_of
from facezoo.errors import ChecksumError
from facezoo.images import ImageError
from tests.helpers import package_tiny


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("exported")
    folder, card = package_tiny(str(root))
    return folder, card


def test_package_writes_card_with_checksum(packaged):
    folder, card = packaged
    with open(os.path.join(folder, "card.json")) as f:
        data = json.load(f)
    assert data["sha256"] == sha256_of(os.path.join(folder, "model.keras"))
    assert data["size_bytes"] == os.path.getsize(os.path.join(folder, "model.keras"))
    assert zoo.ModelCard.from_json(os.path.join(folder, "card.json")) == card


def test_tampered_and_truncated_files_are_refused(packaged, tmp_path):
    folder, _ = packaged
    tampered = tmp_path / "tampered"
    shutil.copytree(folder, tampered)
    data = bytearray((tampered / "model.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "model.keras").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="sha256"):
        zoo.load("tiny_model", directory=str(tampered))
    truncated = tmp_path / "truncated"
    shutil.copytree(folder, truncated)
    (truncated / "model.keras").write_bytes(data[: len(data) // 3])
    with pytest.raises(ChecksumError, match="truncated"):
        zoo.load("tiny_model", directory=str(truncated))


def test_unknown_name_lists_close_matches(monkeypatch, packaged):
    folder, _ = packaged
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", os.path.dirname(folder))
    assert zoo.list_models() == ["tiny_model"]
    assert zoo.list_models("dmtl_*") == []
    with pytest.raises(ValueError, match="Did you mean 'tiny_model'"):
        zoo.load("tiny_modle")


def test_predict_schema_for_every_input_form(packaged, tmp_path):
    folder, card = packaged
    model = zoo.load("tiny_model", directory=folder)
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (70, 50, 3), dtype=np.uint8)
    path = tmp_path / "face.png"
    Image.fromarray(arr).save(path)
    results = model.predict([str(path), path.read_bytes(), arr, arr.astype(np.float32) / 255.0,
                             Image.fromarray(arr)])
    assert len(results) == 5
    json.dumps(results)  # JSON-serialisable
    first = results[0]
    assert first["model"] == "tiny_model" and first["input"] == str(path)
    male = first["attributes"]["Male"]
    assert 0.0 <= male["probability"] <= 1.0 and male["present"] == (male["probability"] >= 0.5)
    assert set(male) == {"probability", "present", "confidence", "abstain"}
    age = first["attributes"]["age"]
    assert 0.0 <= age["value"] <= 100.0 and "probabilities" not in age
    race = first["attributes"]["race"]
    assert set(race["probabilities"]) == {"white", "black", "asian", "indian", "others"}
    assert race["label"] == max(race["probabilities"], key=race["probabilities"].get)
    assert np.isclose(sum(race["probabilities"].values()), 1.0, atol=1e-3)
    # The same pixels give the same answer whatever the input form (PNG is lossless).
    for other in results[1:]:
        assert other["attributes"]["Male"]["probability"] == pytest.approx(male["probability"], abs=2e-3)
    assert model.predict(arr)["attributes"].keys() == first["attributes"].keys()  # single input -> dict


def test_predict_errors_raise_or_collect(packaged, tmp_path):
    folder, _ = packaged
    model = zoo.load("tiny_model", directory=folder)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    good = np.zeros((40, 32, 3), np.uint8)
    with pytest.raises(ImageError, match="bad.jpg: not an image"):
        model.predict([good, str(bad)])
    out = model.predict([good, str(bad), np.full((40, 32, 3), np.nan, np.float32)], errors="collect")
    assert "attributes" in out[0]
    assert out[1]["input"] == str(bad) and "not an image" in out[1]["error"]
    assert "NaN" in out[2]["error"]
    with pytest.raises(ValueError, match="errors must be"):
        model.predict(good, errors="ignore")


def test_batching_gives_the_same_results(packaged):
    folder, _ = packaged
    model = zoo.load("tiny_model", directory=folder)
    imgs = [np.random.default_rng(i).integers(0, 256, (40, 32, 3), dtype=np.uint8) for i in range(5)]
    a = model.predict(imgs, batch_size=2)
    b = model.predict(imgs, batch_size=5)
    for x, y in zip(a, b):
        assert x["attributes"]["Male"]["probability"] == pytest.approx(y["attributes"]["Male"]["probability"], abs=1e-4)


@pytest.mark.parametrize("shape", [(40, 32, 3), (97, 61, 3), (20, 50, 3)])
def test_predict_preprocesses_exactly_like_the_training_pipeline(packaged, tmp_path, shape):
    from facezoo.attributes import CELEBA_40
    from facezoo.data.pipeline import pipeline
    from facezoo.data.records import FaceRecord
    from facezoo.data.tfrecord import convert
    folder, _ = packaged
    model = zoo.load("tiny_model", directory=folder)
    pixels = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "face.png"  # lossless, so both paths start from the same pixels
    Image.fromarray(pixels).save(path)
    convert([FaceRecord(image=str(path), labels={"Male": 1}, split="val")], CELEBA_40, tmp_path / "rec",
            shards=1, progress=False)
    images, _labels, _masks = next(iter(pipeline(str(tmp_path / "rec"), "val", image_size=model.input_size,
                                                 batch_size=1, training=False)))
    np.testing.assert_allclose(model.preprocess(pixels), images[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(model.preprocess(pixels.astype(np.float32)), images[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_predict_rejects_a_bad_batch_size(packaged, batch_size):
    folder, _ = packaged
    model = zoo.load("tiny_model", directory=folder)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.predict(np.zeros((40, 32, 3), np.uint8), batch_size=batch_size)
