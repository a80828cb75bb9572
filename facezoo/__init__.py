"""facezoo: face attribute recognition and face generation models for TensorFlow 2 / Keras 3."""
__version__ = "0.1.0"

from facezoo import attributes  # noqa: E402,F401
