"""Data sets: readers of official layouts, the TFRecord converter and the tf.data pipeline.

``READERS`` maps the name used on the command line (``facezoo data convert <name>``) to a reader
class. Every entry must be a ``facezoo.data.records.Reader`` subclass whose constructor takes the
data set root as its only required argument and which sets ``label_space``. Readers in other
modules add themselves here with one line each, e.g.::

    from facezoo.data.adience import AdienceReader
    READERS["adience"] = AdienceReader
"""
from facezoo.data.celeba import CelebaReader
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.utkface import UtkFaceReader

READERS: dict[str, type[Reader]] = {
    "celeba": CelebaReader,
    "utkface": UtkFaceReader,
}

__all__ = ["READERS", "CelebaReader", "UtkFaceReader", "DataFormatError", "FaceRecord", "Reader"]
