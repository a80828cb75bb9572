"""Data sets: readers of official layouts, the TFRecord converter and the tf.data pipeline.

``READERS`` maps the name used on the command line (``facezoo data convert <name>``) to a reader
class. Every entry must be a ``facezoo.data.records.Reader`` subclass whose constructor takes the
data set root as its only required argument and which sets ``label_space``. Readers in other
modules add themselves here with one line each, e.g.::

    from facezoo.data.adience import AdienceReader
    READERS["adience"] = AdienceReader
"""
from facezoo.data.adience import AdienceReader
from facezoo.data.bp4d import Bp4dReader
from facezoo.data.celeba import CelebaReader
from facezoo.data.ckplus import CkPlusReader
from facezoo.data.disfa import DisfaReader
from facezoo.data.fer2013 import Fer2013CsvReader, Fer2013FolderReader
from facezoo.data.face_union import FaceUnionReader, Fer2013FaceReader, LfwGenderReader
from facezoo.data.fotw import FotwReader
from facezoo.data.generic_csv import CsvFolderReader
from facezoo.data.lfw_pairs import LfwIdentityReader, read_pairs
from facezoo.data.lfwa import LfwaReader
from facezoo.data.morph import MorphReader
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.utkface import UtkFaceReader

READERS: dict[str, type[Reader]] = {
    "celeba": CelebaReader,
    "utkface": UtkFaceReader,
    "lfwa": LfwaReader,
    "adience": AdienceReader,
    "morph2": MorphReader,
    "fotw": FotwReader,
    "fer2013": Fer2013FolderReader,
    "ckplus": CkPlusReader,
    "lfw": LfwIdentityReader,
    "gender_csv": CsvFolderReader,
    "bp4d": Bp4dReader,
    "disfa": DisfaReader,
    "face": FaceUnionReader,
    "fer2013_face": Fer2013FaceReader,
    "lfw_gender": LfwGenderReader,
}

__all__ = ["READERS", "CelebaReader", "UtkFaceReader", "DataFormatError", "FaceRecord", "Reader",
           "AdienceReader", "CkPlusReader", "CsvFolderReader", "Fer2013CsvReader", "Fer2013FolderReader",
           "FotwReader", "LfwIdentityReader", "LfwaReader", "MorphReader", "read_pairs", "Bp4dReader",
           "DisfaReader", "FaceUnionReader", "Fer2013FaceReader", "LfwGenderReader"]
