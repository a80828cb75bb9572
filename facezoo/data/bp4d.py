"""BP4D-Spontaneous (Zhang et al. 2014): action-unit occurrence of 41 people, 8 tasks each.

Layout under ``root`` (the release's ``AUCoding`` and 2D ``Sequences`` folders, as FERA 2015 used them)::

    AUCoding/AU_OCC/<subject>_<task>.csv      e.g. AUCoding/AU_OCC/F001_T1.csv
    Sequences/<subject>/<task>/<frame>.jpg    e.g. Sequences/F001/T1/2440.jpg (any zero padding: 0042.jpg)

Each occurrence CSV has one header line and one row per coded frame. The first column is the frame
number; it may be named ``frame`` or ``0`` (the release's files name their columns by AU number and put
``0`` over the frame column) or be left empty. The other columns are AUs, named ``AU12``, ``AU012`` or
``12`` (case and surrounding spaces ignored); columns of AUs not asked for are ignored, so the release's
27 coded AUs read as the 12 that results are reported on (``facezoo.attributes.BP4D_AUS``). Values:
``0`` absent, ``1`` present, ``9`` not codable (the AU is left out for that frame, as unknown labels
are everywhere in facezoo; not a problem; a frame with every AU asked for at 9 yields no record).
Images: any ``.jpg``/``.jpeg``/``.png`` whose name, less its extension, is the frame number.

Problems reported as ``<file>:<line>`` (``Reader.problems``): a row with the wrong number of fields, a
frame that is not a whole number or repeats an earlier row, a frame without an image (row skipped); an
AU value other than 0/1/9 (that label left out). A label file not named ``<subject>_<task>.csv`` is
skipped and reported. Raised (``DataFormatError``): a header without a frame column or without a column
for an AU asked for; no label file; not one usable frame.

Records: ``identity`` the subject (``F001``), ``split`` ``train``. BP4D has no official split: papers
use 3 subject-independent folds, so split by subject (``facezoo.data.records.identity_split``), never
by frame (consecutive frames are near-duplicates).
"""
from __future__ import annotations

import os
import re
from typing import Iterator

from facezoo.attributes import BP4D, BP4D_AUS, au_label_space
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import iter_table, table_columns
from facezoo.errors import MissingDataError

LABEL_DIR = os.path.join("AUCoding", "AU_OCC")
IMAGE_DIR = "Sequences"
LABEL_FILE = re.compile(r"^(?P<subject>[A-Za-z]+\d+)_(?P<task>[A-Za-z]*\d+)\.csv$")
AU_COLUMN = re.compile(r"^(?:au)?0*(?P<number>\d+)$")
FRAME_COLUMNS = ("frame", "0", "")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
OCCURRENCE = {"0": 0, "1": 1}
UNKNOWN = "9"


def frame_images(folder: str) -> dict[int, str]:
    """Frame number -> file name of the images in ``folder`` named by their frame (``0042.jpg``, ``42.png``).

    Files with other names are ignored; a missing folder gives ``{}``. When two files name the same
    frame (``42.jpg`` and ``0042.jpg``), the first in sorted order is kept.
    """
    if not os.path.isdir(folder):
        return {}
    found: dict[int, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS and stem.isdigit():
            found.setdefault(int(stem), name)
    return found


def parse_frame(text: str) -> int | None:
    """A frame number from ``42`` or ``42.0``; None unless a non-negative whole number."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not value.is_integer() or value < 0:
        return None
    return int(value)


def au_columns(path: str, aus) -> tuple[str, dict[int, str]]:
    """The frame column and AU number -> column name of an occurrence CSV's header.

    Raises:
        DataFormatError: the first column is not a frame column, or an AU in ``aus`` has no column
            (the message names the file's line 1 and the header found).
    """
    columns = table_columns(path)
    frame = columns[0]
    if frame not in FRAME_COLUMNS:
        raise DataFormatError(f"{path}:1: the first column must be the frame (named 'frame', '0' or nothing), "
                              f"got {frame!r}; header {columns}")
    by_number: dict[int, str] = {}
    for column in columns[1:]:
        match = AU_COLUMN.match(column)
        if match:
            by_number.setdefault(int(match["number"]), column)
    missing = [f"AU{a}" for a in aus if a not in by_number]
    if missing:
        raise DataFormatError(f"{path}:1: header has no column for {missing}; expected AU columns named like "
                              f"'AU12' or '12', found {columns}")
    return frame, {a: by_number[a] for a in aus}


class Bp4dReader(Reader):
    """Reads BP4D's AU occurrence CSVs and frame images (layout in the module docstring).

    Args:
        root: folder holding ``AUCoding/AU_OCC`` and ``Sequences``.
        aus: the AUs to read, as FACS numbers (default the 12 of ``BP4D_AUS``); they name the labels
            ``AU<n>`` and the reader's ``label_space``.
        labels_dir, images_dir: the two folders, relative to ``root``.

    Raises:
        DataFormatError: ``labels_dir`` is missing or holds no CSV; or, while reading, a header lacks
            the frame or an AU column, or not one frame has an image.
    """

    def __init__(self, root, aus=BP4D_AUS, labels_dir: str = LABEL_DIR, images_dir: str = IMAGE_DIR):
        super().__init__(root)
        self.aus = tuple(int(a) for a in aus)
        self.label_space = au_label_space("bp4d", self.aus) if self.aus != BP4D_AUS else BP4D
        self.labels_dir = os.path.join(self.root, labels_dir)
        self.images_dir = os.path.join(self.root, images_dir)
        if not os.path.isdir(self.labels_dir):
            raise MissingDataError(f"Bp4dReader: {self.labels_dir!r} does not exist; expected "
                                   f"{LABEL_DIR}/<subject>_<task>.csv under the root")
        self.files = sorted(f for f in os.listdir(self.labels_dir) if f.lower().endswith(".csv"))
        if not self.files:
            raise DataFormatError(f"Bp4dReader: no <subject>_<task>.csv in {self.labels_dir!r}")

    def _read(self) -> Iterator[FaceRecord]:
        found = 0
        for file in self.files:
            match = LABEL_FILE.match(file)
            if not match:
                self.report(file, "skipped: expected a label file named <subject>_<task>.csv, e.g. F001_T1.csv")
                continue
            for record in self._read_file(file, match["subject"], match["task"]):
                found += 1
                yield record
        if not found:
            raise DataFormatError(f"Bp4dReader: not one coded frame under {self.labels_dir} has an image "
                                  f"under {self.images_dir}/<subject>/<task>/")

    def _read_file(self, file: str, subject: str, task: str) -> Iterator[FaceRecord]:
        path = os.path.join(self.labels_dir, file)
        frame_column, columns = au_columns(path, self.aus)
        folder = os.path.join(self.images_dir, subject, task)
        images = frame_images(folder)
        seen: set[int] = set()
        for row in iter_table(path):
            where = f"{file}:{row.line}"
            if row.error:
                self.report(where, f"row skipped: {row.error}")
                continue
            frame = parse_frame(row.values[frame_column])
            if frame is None:
                self.report(where, f"row skipped: field {frame_column or 'frame'!r}: expected a frame number, "
                                   f"got {row.values[frame_column]!r}")
                continue
            if frame in seen:
                self.report(where, f"row skipped: frame {frame} is coded twice in {file}")
                continue
            seen.add(frame)
            if frame not in images:
                self.report(where, f"row skipped: frame {frame} has no image in "
                                   f"{os.path.relpath(folder, self.root)}/")
                continue
            labels, problems = {}, []
            for au, column in columns.items():
                value = row.values[column]
                if value in OCCURRENCE:
                    labels[f"AU{au}"] = OCCURRENCE[value]
                elif value != UNKNOWN:
                    problems.append(f"field {column!r} (AU{au}): expected 0, 1 or 9 (unknown), got {value!r}")
            if not labels and not problems:
                continue  # every AU not codable (9): nothing to learn from this frame
            labels = self.usable_labels(where, labels, problems)
            if labels is None:
                continue
            source = os.path.relpath(os.path.join(folder, images[frame]), self.root).replace(os.sep, "/")
            yield FaceRecord(image=os.path.join(folder, images[frame]), labels=labels, identity=subject,
                             split="train", source=source)
