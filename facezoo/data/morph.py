"""MORPH II (Ricanek & Tesafaye 2006): age, gender and race of 55k mugshots of 13k people.

Layout under ``root``::

    <name>.csv                       the metadata table (``csv``; by default the one CSV in root)
    <photo paths as in the table>    e.g. Album2/001234_01M21.JPG

The table's first line names its columns (compared case-insensitively, surrounding spaces
ignored). Used columns — all required:

    ``id_num``  subject id (the record's ``identity``; kept as text, leading zeros and all)
    ``photo``   image path relative to ``root``
    ``age``     age in years (a whole number; ``29.0`` is accepted), clipped to ``MAX_AGE``
    ``gender``  ``M`` (0) or ``F`` (1)
    ``race``    ``B`` black, ``W`` white, ``H`` hispanic, ``A`` asian, ``I`` indian, ``O`` other

Other columns of the official releases (``picture_num``, ``dob``, ``doa``, ``facial_hair``,
``age_diff``, ``glasses``, ...) are ignored. A bad age, gender or race value leaves that label out
and is reported; a row with no usable label, with the wrong number of fields, an empty ``id_num``
or a missing image file is skipped and reported.

Records: ``split`` is ``train`` (MORPH II has no official split; split by subject with
``facezoo.data.records.identity_split``), ``identity`` the ``id_num``.
"""
from __future__ import annotations

import glob
import math
import os
from typing import Iterator

from facezoo.attributes import MAX_AGE, MORPH2
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import iter_table
from facezoo.errors import MissingDataError

REQUIRED_COLUMNS = ("id_num", "photo", "age", "gender", "race")
GENDERS = {"M": 0, "F": 1}
RACES = {"B": 0, "W": 1, "H": 2, "A": 3, "I": 4, "O": 5}  # MORPH2 race order


def parse_age(text: str) -> int | None:
    """Whole years from ``29`` or ``29.0``, clipped to ``MAX_AGE``; None if not a non-negative whole number."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return min(int(value), MAX_AGE)


class MorphReader(Reader):
    """Reads MORPH II's metadata CSV and images (layout and columns in the module docstring).

    Args:
        root: folder the ``photo`` paths are relative to.
        csv: the metadata table, relative to ``root`` or absolute; None takes the only ``*.csv``
            directly in ``root``.

    Raises:
        FileNotFoundError: ``csv`` does not exist.
        DataFormatError: ``csv`` is None and ``root`` holds no or several CSV files; or, while
            reading, the header lacks a required column (the message lists the header found and
            the columns expected), or not one image exists.
    """

    label_space = MORPH2

    def __init__(self, root, csv: str | None = None):
        super().__init__(root)
        if csv is None:
            found = sorted(glob.glob(os.path.join(glob.escape(self.root), "*.csv")))
            if len(found) != 1:
                raise DataFormatError(
                    f"MorphReader: expected exactly one *.csv in {self.root!r} (or pass csv=), "
                    f"found {[os.path.basename(f) for f in found]}")
            csv = found[0]
        self.csv = os.path.join(self.root, os.fspath(csv))
        if not os.path.isfile(self.csv):
            raise MissingDataError(f"MorphReader: metadata table {self.csv!r} does not exist")

    def _read(self) -> Iterator[FaceRecord]:
        name, found = os.path.basename(self.csv), 0
        for row in iter_table(self.csv, REQUIRED_COLUMNS):
            where = f"{name}:{row.line}"
            if row.error:
                self.report(where, f"row skipped: {row.error}")
                continue
            v = row.values
            if not v["id_num"] or not v["photo"]:
                self.report(where, f"row skipped: id_num and photo must be non-empty, got "
                                   f"{v['id_num']!r}, {v['photo']!r}")
                continue
            image = os.path.join(self.root, v["photo"])
            if not os.path.isfile(image):
                self.report(where, f"row skipped: image {v['photo']} does not exist")
                continue
            found += 1
            labels = self.usable_labels(where, *self._labels(v))
            if labels is None:
                continue
            yield FaceRecord(image=image, labels=labels, identity=v["id_num"], split="train",
                             source=os.path.relpath(image, self.root))
        if not found:
            raise DataFormatError(f"MorphReader: not one photo listed in {self.csv} exists under {self.root}")

    @staticmethod
    def _labels(v: dict) -> tuple[dict, list[str]]:
        """Labels of one row, and a description of each value that cannot be used."""
        labels, problems = {}, []
        age = parse_age(v["age"])
        if age is None:
            problems.append(f"field 'age': expected a non-negative whole number, got {v['age']!r}")
        else:
            labels["age"] = age
        for field, table in (("gender", GENDERS), ("race", RACES)):
            value = table.get(v[field].upper())
            if value is None:
                problems.append(f"field {field!r}: expected one of {sorted(table)}, got {v[field]!r}")
            else:
                labels[field] = value
        return labels, problems
