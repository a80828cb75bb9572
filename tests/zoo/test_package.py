"""Packaging a model folder: float16 storage rounds the weights, deflates the archive and still loads safely."""
import os
import zipfile

import numpy as np

from facezoo.models.weights import load_keras
from facezoo.zoo import ModelCard, load
from facezoo.zoo.package import package_model
from tests.helpers import random_images, tiny_model


def _card(name):
    from facezoo.preprocessing import PreprocessSpec
    return ModelCard(
        name=name, task="attributes", description="tiny random model for tests",
        architecture={"backbone": "resnet18", "width": 0.125}, preprocessing=PreprocessSpec((40, 32)).to_dict(),
        label_spaces=[], training_data={"dataset": "celeba"}, split="none", license="test only",
        headline="mean_accuracy", metrics={})


def test_float16_storage_halves_the_file_and_keeps_the_outputs(tmp_path):
    model = tiny_model()
    src = str(tmp_path / "src.keras")
    model.save(src)
    plain = package_model(src, str(tmp_path / "plain"), _card("plain"))
    small = package_model(src, str(tmp_path / "small"), _card("small"), float16_storage=True)
    assert "float16" in small.architecture["storage"] and "storage" not in plain.architecture
    assert small.size_bytes < 0.7 * plain.size_bytes
    path = os.path.join(tmp_path, "small", "model.keras")
    with zipfile.ZipFile(path) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    stored = load_keras(path)  # safe_mode=True
    for w, original in zip(stored.weights, model.weights):
        expected = original.numpy().astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(w.numpy(), expected)
    x = random_images(4)
    a, b = model(x, training=False), stored(x, training=False)
    worst = max(float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a)
    assert 0 < worst < 0.05
    # The folder loads through the registry, its checksum verified like any other.
    assert load("small", directory=str(tmp_path / "small")).card.name == "small"
