"""Errors a user can fix, kept apart from bugs.

Everything a user caused — a bad image, a bad flag, a missing data set, a tampered model file, a missing
TensorFlow install — raises a subclass of ``UserError``. The CLI turns exactly these into one line on
stderr and exit status 2; any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; the message names the input and the problem."""


class UsageError(UserError, ValueError):
    """A bad argument value (a flag, a keyword argument, a model name)."""


class ImageError(UserError, ValueError):
    """An input could not be turned into an image; the message names the input and why."""


class DataFormatError(UserError, ValueError):
    """A data set file does not have the layout or content its reader expects."""


class MissingDataError(UserError, FileNotFoundError):
    """A data set, model file or folder named by the user does not exist."""


class ModelFileError(UserError, RuntimeError):
    """A model folder is broken: a card or weights file missing, truncated, corrupt or of another version."""


class ChecksumError(ModelFileError):
    """A shipped model file does not match the checksum on its card (tampered or truncated)."""


class MissingDependencyError(UserError, ImportError):
    """An optional dependency (an extra) is not installed; the message names the ``pip install``."""


def require_tensorflow():
    """Imports TensorFlow, or raises ``MissingDependencyError`` saying which extra installs it."""
    try:
        import tensorflow as tf
    except ImportError as e:
        raise MissingDependencyError(
            f"TensorFlow is not installed ({e}); install it with pip install \"facezoo[cpu]\" "
            "(or \"facezoo[gpu]\" for CUDA)") from None
    return tf
