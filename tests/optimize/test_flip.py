"""The flip test: outputs averaged over a face and its mirror image, in Keras and on exported backends."""
import importlib.util
import json
import os

import numpy as np
import pytest

import facezoo
from facezoo.errors import UsageError
from facezoo.images import load_image
from facezoo.optimize import flip_test_network
from tests.helpers import package_tiny, random_images, tiny_model


def _outputs(model, x):
    return {k: np.asarray(v) for k, v in model(x, training=False).items()}


def test_flip_test_network_is_the_mean_over_the_image_and_its_mirror():
    model = tiny_model()
    x = random_images(3)
    flipped = flip_test_network(model)
    assert flipped.dmtl_config == model.dmtl_config
    got = _outputs(flipped, x)
    plain, mirror = _outputs(model, x), _outputs(model, x[:, :, ::-1])
    assert set(got) == set(plain)
    for key in got:
        np.testing.assert_allclose(got[key], (plain[key] + mirror[key]) / 2, atol=1e-6)
        assert np.abs(plain[key] - mirror[key]).max() > 1e-4  # the random network is not symmetric
    # Its answers no longer depend on which way the face looks.
    again = _outputs(flipped, x[:, :, ::-1])
    for key in got:
        np.testing.assert_allclose(again[key], got[key], atol=1e-6)
    assert not set(map(id, flipped.weights)) - set(map(id, model.weights))  # shares the weights


def test_flip_test_network_refuses_a_model_without_an_image_input():
    import keras
    inputs = keras.Input((8,))
    with pytest.raises(ValueError, match="one NHWC image input"):
        flip_test_network(keras.Model(inputs, keras.layers.Dense(2)(inputs)))


def _flip_card_model(tmp_path):
    folder, _ = package_tiny(str(tmp_path))
    path = os.path.join(folder, "card.json")
    card = json.load(open(path))
    card["architecture"]["flip_test"] = True
    json.dump(card, open(path, "w"))
    return folder


def test_card_flip_test_reaches_predict_and_can_be_turned_off(tmp_path):
    folder = _flip_card_model(tmp_path)
    image = np.random.default_rng(1).integers(0, 256, (40, 32, 3), dtype=np.uint8)
    model = facezoo.load("tiny_model", directory=folder, backend="keras")
    assert model.flip_test
    a = model.predict(image, check_face=False)["attributes"]
    b = model.predict(image[:, ::-1].copy(), check_face=False)["attributes"]
    assert a == b  # the mean over both views is the same whichever view comes in
    plain = facezoo.load("tiny_model", directory=folder, backend="keras", flip_test=False)
    assert not plain.flip_test
    c = plain.predict(image, check_face=False)["attributes"]
    d = plain.predict(image[:, ::-1].copy(), check_face=False)["attributes"]
    assert c != d
    # describe_crops (analyze's path) runs the same network.
    assert model.describe_crops(image[None])[0] == a


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs onnxruntime")
def test_exported_backend_flip_test_gives_the_keras_answers():
    rng = np.random.default_rng(2)
    images = [load_image(facezoo.sample_image())]
    images += [rng.integers(0, 256, (90, 80, 3), dtype=np.uint8) for _ in (1, 2)]
    keras_model = facezoo.load("dmtl_utkface", backend="keras", flip_test=True)
    ort_model = facezoo.load("dmtl_utkface", backend="onnxruntime", precision="fp32", flip_test=True)
    plain = facezoo.load("dmtl_utkface", backend="onnxruntime", precision="fp32", flip_test=False)
    assert ort_model.flip_test and not plain.flip_test
    batch = np.stack([ort_model.preprocess(i) for i in images])
    want = keras_model.logits(np.stack([keras_model.preprocess(i) for i in images]))
    got = ort_model.logits(batch)
    mirrored = ort_model.logits(batch[:, :, ::-1])
    one_view, other_view = plain.logits(batch), plain.logits(batch[:, :, ::-1])
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=2e-4, atol=1e-4)  # fp32 graphs: ~1e-5 relative
        np.testing.assert_allclose(mirrored[key], got[key], rtol=2e-4, atol=1e-4)
        np.testing.assert_allclose(got[key], (one_view[key] + other_view[key]) / 2, atol=1e-5)
    from tests.backends.compare import results_differences
    dp, changed, total = results_differences(keras_model.predict(images, check_face=False),
                                             ort_model.predict(images, check_face=False))
    assert changed == 0 and total > 0 and dp <= 2e-4


def test_flip_test_is_refused_where_it_means_nothing():
    with pytest.raises(UsageError, match="flip_test"):
        facezoo.load("dcgan_face64", flip_test=True)


def test_evaluate_follows_the_card_and_the_command_line_overrides_it(tmp_path, celeba_layout, monkeypatch, capsys):
    from facezoo import cli, zoo
    root, _names, _values = celeba_layout(n=30)
    folder = _flip_card_model(tmp_path)
    monkeypatch.setattr(zoo.registry, "EXPORTED_DIR", os.path.dirname(folder))
    reports = {}
    for choice in ("card", "on", "off"):
        out = tmp_path / choice
        assert cli.main(["evaluate", "tiny_model", "--data-dir", str(root), "--no-latency", "--out", str(out),
                         "--flip-test", choice]) == 0
        reports[choice] = json.load(open(out / "metrics.json"))
        assert ("flip test: each output averaged" in capsys.readouterr().out) == (choice != "off")
    assert reports["card"]["flip_test"] and reports["on"]["flip_test"] and not reports["off"]["flip_test"]
    assert reports["card"]["heads"] == reports["on"]["heads"]
    # The random network is not mirror-symmetric, so some probability moves (the summary may round alike).
    assert reports["card"]["heads"] != reports["off"]["heads"]
