"""facezoo: face attribute recognition models for TensorFlow 2 / Keras 3.

    import facezoo
    facezoo.list_models()                    # shipped, pretrained models
    model = facezoo.load("dmtl_celeba")      # checksum-verified, offline
    model.predict(["face1.jpg", "face2.jpg"])
    facezoo.models.resnet18(input_shape=(112, 112, 3), weights=None)   # builders, keras.applications style

Sub-packages load on first use (``facezoo.models``, ``facezoo.data``, ``facezoo.train`` ...), so
``import facezoo`` stays cheap and works without TensorFlow; what needs TensorFlow says how to install it.
"""
import importlib

__version__ = "0.2.0"

from facezoo import attributes  # noqa: E402,F401
from facezoo.zoo import list_models, load, model_card, sample_image, sample_photo  # noqa: E402,F401

_SUBMODULES = ("backends", "data", "decoding", "evaluation", "face", "files", "images", "inference", "models",
               "optimize", "preprocessing", "style", "tasks", "train", "zoo", "errors")
_NEEDS_TENSORFLOW = ("data", "evaluation", "models", "optimize", "style", "tasks", "train")


def analyze(images, models=None, **kwargs):
    """Detects, aligns and describes every face in photos; see ``facezoo.face.analyze.FaceAnalyzer.analyze``.

    ``models``: registered names or loaded models (default ``facezoo.face.analyze.DEFAULT_MODELS``: ``dmtl_face``,
    every head in one pass).

    ``backend=`` and ``precision=`` pick what runs the networks (``facezoo.backends``; default: the fastest
    installed, so this works without TensorFlow where ONNX Runtime is installed)."""
    from facezoo.face.analyze import DEFAULT_MODELS, analyze as _analyze
    return _analyze(images, DEFAULT_MODELS if models is None else models, **kwargs)


def verify(a, b, model="verify_face", **kwargs):
    """Same person? Distance, threshold and decision for two faces; see ``facezoo.inference.embedding.verify``.

    Runs without TensorFlow where ONNX Runtime is installed (the shipped graph of ``verify_face``)."""
    from facezoo.inference.embedding import verify as _verify
    return _verify(a, b, model, **kwargs)


def __getattr__(name):
    if name in _SUBMODULES:
        if name in _NEEDS_TENSORFLOW:
            from facezoo.errors import require_tensorflow
            require_tensorflow()
        return importlib.import_module(f"facezoo.{name}")
    raise AttributeError(f"module 'facezoo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
