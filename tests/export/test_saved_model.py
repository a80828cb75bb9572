"""SavedModel for TF Serving: layout, signatures, and answers equal to ``FaceModel.predict``'s decoding."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import facezoo
from facezoo.export import export_model
from facezoo.images import load_image
from facezoo.models.dmtl import confidence_name, heads_of
from facezoo.models.heads import decode_confidence, decode_head
from tests.helpers import data_dir

pytestmark = pytest.mark.slow  # one export of a shipped model (~10 s) shared by the module

TOL = 1e-4


def _encoded(array, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _test_images():
    """The bundled photo and generated JPEG / PNG (RGB, grey, RGBA) files of other sizes and aspects."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:160, 0:120]
    smooth = np.stack([(xx * 2) % 256, (yy * 1.5) % 256, (xx + yy) % 256], -1).astype(np.uint8)
    noisy = rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)
    rgba = np.concatenate([smooth, rng.integers(0, 256, (160, 120, 1), dtype=np.uint8)], -1)
    with open(facezoo.sample_image(), "rb") as f:
        sample = f.read()
    return [sample, _encoded(smooth, "JPEG", quality=85), _encoded(noisy, "PNG"),
            _encoded(smooth[..., 0], "PNG"), _encoded(rgba, "PNG")]


def _expected(fm, images):
    """The decoding ``FaceModel.predict`` does, unrounded, keyed like the serving outputs."""
    x = np.stack([fm.preprocess(load_image(b)) for b in images])
    logits = fm.logits(x)
    out = {}
    for _ds, spec, name in heads_of(fm.model):
        attr = spec.attribute
        dec = decode_head(attr, logits[name])
        if attr.kind == "binary":
            out[f"{attr.name}_probability"] = dec["positive"]
        elif attr.kind == "nominal":
            out[f"{attr.name}_probabilities"] = dec["probabilities"]
            out[f"{attr.name}_index"] = dec["index"]
        else:
            out[f"{attr.name}_value"] = dec["value"]
        if confidence_name(name) in logits:
            out[f"{attr.name}_confidence"] = decode_confidence(logits[confidence_name(name)])
    return out


def _assert_close(got, want):
    for k, v in want.items():
        np.testing.assert_allclose(got[k].numpy(), v, atol=TOL, rtol=0, err_msg=k)


@pytest.fixture(scope="module")
def utkface_export(tmp_path_factory):
    """The shipped dmtl_utkface exported through the command line, and loaded back."""
    from facezoo import cli
    out = str(tmp_path_factory.mktemp("serving"))
    assert cli.main(["export", "dmtl_utkface", "--format", "saved_model", "--out", out]) == 0
    path = os.path.join(out, "dmtl_utkface", "1")
    return facezoo.load("dmtl_utkface", backend="keras"), out, path, tf.saved_model.load(path)


def test_layout_follows_tf_serving(utkface_export):
    _fm, out, path, _loaded = utkface_export
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))
    assert os.path.isfile(os.path.join(path, "assets.extra", "card.json"))
    config = open(os.path.join(out, "models.config")).read()
    assert "name: 'dmtl_utkface'" in config and "base_path: '/models/dmtl_utkface'" in config


def test_saved_model_cli_shows_the_signatures(utkface_export):
    _fm, _out, path, _loaded = utkface_export
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip("saved_model_cli is not installed beside this python")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True).stdout
    for text in ("signature_def['serving_default']", "signature_def['image_uint8']",
                 "signature_def['preprocessed']", "inputs['image_bytes']", "DT_STRING",
                 "outputs['age_value']", "outputs['gender_label']", "outputs['race_abstain']"):
        assert text in shown


def test_image_bytes_signature_equals_predict(utkface_export):
    fm, _out, _path, loaded = utkface_export
    images = _test_images()
    got = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
    _assert_close(got, _expected(fm, images))
    labels = [fm.predict(b)["attributes"]["race"]["label"] for b in images]
    assert [v.decode() for v in got["race_label"].numpy()] == labels
    abstain = [fm.predict(b)["attributes"]["age"]["abstain"] for b in images]
    assert list(got["age_abstain"].numpy()) == abstain


def test_uint8_and_preprocessed_signatures_equal_predict(utkface_export):
    fm, _out, _path, loaded = utkface_export
    crops = [load_image(b) for b in _test_images()[:2]]
    crops = [c[:150, :110] for c in crops]  # one size per batch
    got = loaded.signatures["image_uint8"](images=tf.constant(np.stack(crops)))
    _assert_close(got, _expected(fm, crops))
    x = np.stack([fm.preprocess(c) for c in crops])
    got = loaded.signatures["preprocessed"](images=tf.constant(x))
    _assert_close(got, _expected(fm, crops))


@pytest.mark.real_data
def test_real_utkface_images_equal_predict(utkface_export):
    root = data_dir("utkface")
    if root is None:
        pytest.skip("../shared/data/utkface is not here")
    fm, _out, _path, loaded = utkface_export
    folder = os.path.join(root, "UTKFace")
    files = sorted(os.listdir(folder))[:: max(1, len(os.listdir(folder)) // 8)][:8]
    images = [open(os.path.join(folder, f), "rb").read() for f in files]
    got = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
    _assert_close(got, _expected(fm, images))


def test_binary_heads_use_the_cards_thresholds(tmp_path):
    from tests.helpers import package_tiny
    three = [a for a in facezoo.attributes.CELEBA_40.attributes if a.name in ("Male", "Smiling", "Young")]
    folder, card = package_tiny(str(tmp_path), datasets={"celeba": three})
    card.thresholds = {"Male": 0.0, "Smiling": 1.0}
    fm = facezoo.load("tiny_model", directory=folder)
    fm.card = card
    path = export_model(fm, format="saved_model", out=str(tmp_path / "serving"), version=3)
    assert path.endswith(os.path.join("tiny_model", "3"))
    images = _test_images()[:2]
    got = tf.saved_model.load(path).signatures["serving_default"](image_bytes=tf.constant(images))
    _assert_close(got, _expected(fm, images))
    assert got["Male_present"].numpy().all() and not got["Smiling_present"].numpy().any()
    p = got["Young_probability"].numpy()
    np.testing.assert_array_equal(got["Young_present"].numpy(), p >= 0.5)
