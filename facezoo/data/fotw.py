"""Faces of the World (ChaLearn LAP 2016, tracks 2 and 3): accessories, smile and gender.

Layout under ``root``::

    train.csv, val.csv, test.csv     one table per split (read one per reader: ``csv``)
    <image paths as in the table>    e.g. train/0001.jpg

A table's first line names its columns (compared case-insensitively, spaces ignored):

    ``image``   image path relative to ``root`` (required)
    ``hat headband glasses earrings necklace tie scarf``   accessories track (binary)
    ``smile gender``                                       smile-and-gender track

At least one label column must be present; others (face box ``x y w h``, ...) are ignored.
Label conventions (FotW marks what annotators could not decide as a third value):

    binary columns (accessories, ``smile``): ``1`` yes, ``0`` no; ``-1``, ``2`` or empty =
        unknown / other expression: the label is left out of the record (masked downstream).
    ``gender``: ``0`` male, ``1`` female; ``-1``, ``2`` or empty = other / unsure: left out.

Any other value is reported and left out; rows with no usable label, the wrong number of fields
or a missing image are reported and skipped. ``split`` comes from ``split`` or else from the table's
name (``train*``, ``val*``/``valid*``, ``test*``); FotW has no identities.
"""
from __future__ import annotations

import os
from typing import Iterator

from facezoo.attributes import FOTW
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import iter_table, table_columns
from facezoo.errors import MissingDataError

KNOWN = {"0": 0, "1": 1}
UNKNOWN = {"-1", "2", ""}
SPLIT_PREFIXES = (("train", "train"), ("valid", "val"), ("val", "val"), ("test", "test"))


def split_from_name(path: str) -> str | None:
    """``train``, ``val`` or ``test`` from a table's file name (``val_gender.csv`` -> ``val``), or None."""
    stem = os.path.basename(path).lower()
    for prefix, split in SPLIT_PREFIXES:
        if stem.startswith(prefix):
            return split
    return None


class FotwReader(Reader):
    """Reads one FotW label table and its images (layout and conventions in the module docstring).

    Args:
        root: folder the image paths are relative to.
        csv: the label table, relative to ``root`` or absolute.
        split: the records' split; None derives it from the table's file name.

    Raises:
        FileNotFoundError: ``csv`` does not exist.
        DataFormatError: ``split`` is None and the file name names no split; or, while reading, the
            header lacks ``image`` or every label column, or not one image exists.
    """

    label_space = FOTW

    def __init__(self, root, csv: str = "train.csv", split: str | None = None):
        super().__init__(root)
        self.csv = os.path.join(self.root, os.fspath(csv))
        if not os.path.isfile(self.csv):
            raise MissingDataError(f"FotwReader: label table {self.csv!r} does not exist")
        self.split = split or split_from_name(self.csv)
        if self.split is None:
            raise DataFormatError(
                f"FotwReader: cannot tell the split of {self.csv!r} from its name (expected train*, "
                f"val* or test*); pass split=")

    def _read(self) -> Iterator[FaceRecord]:
        header = table_columns(self.csv, ("image",))
        columns = [a for a in FOTW.names if a in header]
        if not columns:
            raise DataFormatError(f"{self.csv}:1: header names no label column; expected one or more of "
                                  f"{FOTW.names}, found {header}")
        name, found = os.path.basename(self.csv), 0
        for row in iter_table(self.csv, ("image",)):
            where = f"{name}:{row.line}"
            if row.error:
                self.report(where, f"row skipped: {row.error}")
                continue
            image = os.path.join(self.root, row.values["image"])
            if not row.values["image"] or not os.path.isfile(image):
                self.report(where, f"row skipped: image {row.values['image']!r} does not exist")
                continue
            found += 1
            labels, problems = {}, []
            for column in columns:
                text = row.values[column]
                if text in KNOWN:
                    labels[column] = KNOWN[text]
                elif text not in UNKNOWN:
                    problems.append(f"field {column!r}: expected 1, 0, -1, 2 or empty, got {text!r}")
            if not labels:
                self.report(where, "row skipped: no usable label" + (f" ({'; '.join(problems)})" if problems else ""))
                continue
            for problem in problems:
                self.report(where, f"{problem}; label left out")
            yield FaceRecord(image=image, labels=labels, split=self.split,
                             source=os.path.relpath(image, self.root))
        if not found:
            raise DataFormatError(f"FotwReader: not one image listed in {self.csv} exists under {self.root}")
