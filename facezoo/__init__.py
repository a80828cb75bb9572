"""facezoo: face attribute recognition and face generation models for TensorFlow 2 / Keras 3.

    import facezoo
    facezoo.list_models()                    # shipped, pretrained models
    model = facezoo.load("dmtl_celeba")      # checksum-verified, offline
    model.predict(["face1.jpg", "face2.jpg"])

Builders live in ``facezoo.models`` (``resnet18``, ``dmtl``, ...), label spaces in
``facezoo.attributes``, data sets in ``facezoo.data``, training in ``facezoo.train``.
"""
__version__ = "0.1.0"

from facezoo import attributes  # noqa: E402,F401
from facezoo.zoo import list_models, load, model_card, sample_image  # noqa: E402,F401
