"""The generic competition layout: ``id,label`` tables beside one image folder per split.

Layout under ``root``::

    train.csv          header ``id,label``; one row per training image
    train/<id>.jpg     (or ``train/<id>`` when the id already ends in one of ``facezoo.images.IMAGE_EXTENSIONS``)
    test.csv           header ``id`` or ``id,label``; labels may be absent or empty
    test/<id>.jpg
    sampleSubmit.csv   optional submission template (``submission_template()``)

At least one of ``train.csv`` and ``test.csv`` must exist. Column names are compared
case-insensitively; extra columns are ignored. ``label`` is the class index of the label space's
one attribute (``0``, ``1``, ...) or its class name (``male``, case-insensitive).

This layout is all-or-nothing: a malformed row, a repeated id, a missing image or a label outside
the label space raises ``DataFormatError`` naming the file, the lines and examples, before any
record is yielded. ``split`` is ``train`` or ``test`` after the table; there are no identities.
"""
from __future__ import annotations

import os
from typing import Iterator

from facezoo.attributes import GENDER_CSV, LabelSpace
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import examples, iter_table, table_columns
from facezoo.images import IMAGE_EXTENSIONS
from facezoo.errors import MissingDataError

SPLITS = ("train", "test")
SUBMISSION_TEMPLATE = "sampleSubmit.csv"


class CsvFolderReader(Reader):
    """Reads the ``id,label`` layout (see the module docstring).

    Args:
        root: folder holding ``train.csv``/``test.csv`` and the ``train/``/``test/`` folders.
        label_space: the label space of the ``label`` column; it must have exactly one attribute.

    Raises:
        ValueError: ``label_space`` does not have exactly one attribute.
        FileNotFoundError: neither ``train.csv`` nor ``test.csv`` exists.
        DataFormatError: (while reading) see the module docstring.
    """

    label_space = GENDER_CSV

    def __init__(self, root, label_space: LabelSpace = GENDER_CSV):
        super().__init__(root)
        if len(label_space) != 1:
            raise ValueError(f"CsvFolderReader: the label space must have exactly one attribute, "
                             f"{label_space.name!r} has {label_space.names}")
        self.label_space = label_space
        self.tables = [s for s in SPLITS if os.path.isfile(os.path.join(self.root, f"{s}.csv"))]
        if not self.tables:
            raise MissingDataError(f"CsvFolderReader: {self.root!r} has neither train.csv nor test.csv")

    def submission_template(self) -> tuple[list[str], list[str]]:
        """The column names and ids, in order, of ``sampleSubmit.csv``: fill in and write to submit.

        Raises:
            FileNotFoundError: there is no ``sampleSubmit.csv``.
            DataFormatError: it has no ``id`` column or a malformed row.
        """
        path = os.path.join(self.root, SUBMISSION_TEMPLATE)
        columns = table_columns(path, ("id",))
        ids, bad = [], []
        for row in iter_table(path, ("id",)):
            if row.error:
                bad.append(f"line {row.line}: {row.error}")
            else:
                ids.append(row.values["id"])
        if bad:
            raise DataFormatError(f"{path}: {examples(bad)}")
        return columns, ids

    def _label(self, text: str) -> int | None:
        """Class index from an index or a class name; None when neither."""
        classes = self.label_space.attributes[0].classes
        if text.isdigit() and int(text) < len(classes):
            return int(text)
        names = [c.lower() for c in classes]
        return names.index(text.lower()) if text.lower() in names else None

    def _image(self, split: str, image_id: str) -> str | None:
        """Path of an id's image in the split's folder, or None when missing."""
        name = image_id if image_id.lower().endswith(IMAGE_EXTENSIONS) else f"{image_id}.jpg"
        path = os.path.join(self.root, split, name)
        return path if os.path.isfile(path) else None

    def _read_split(self, split: str) -> list[FaceRecord]:
        """All records of one table, or DataFormatError listing every problem in it."""
        path = os.path.join(self.root, f"{split}.csv")
        attribute = self.label_space.attributes[0]
        has_labels = "label" in table_columns(path, ("id",))
        if split == "train" and not has_labels:
            raise DataFormatError(f"{path}:1: a training table needs the columns ['id', 'label'], "
                                  f"found {table_columns(path)}")
        records, malformed, bad_labels, missing, seen = [], [], [], [], {}
        for row in iter_table(path, ("id",)):
            if row.error or not row.values["id"]:
                malformed.append(f"line {row.line}: {row.error or 'empty id'}")
                continue
            image_id = row.values["id"]
            if image_id in seen:
                malformed.append(f"line {row.line}: id {image_id!r} repeats line {seen[image_id]}")
                continue
            seen[image_id] = row.line
            labels = {}
            text = row.values.get("label", "")
            if text or split == "train":
                label = self._label(text)
                if label is None:
                    bad_labels.append(f"line {row.line}: {text!r}")
                else:
                    labels[attribute.name] = label
            image = self._image(split, image_id)
            if image is None:
                missing.append(f"line {row.line}: {split}/{image_id}")
                continue
            records.append(FaceRecord(image=image, labels=labels, split=split,
                                      source=os.path.relpath(image, self.root)))
        if malformed:
            raise DataFormatError(f"{path}: {len(malformed)} malformed row(s): {examples(malformed)}")
        if bad_labels:
            raise DataFormatError(
                f"{path}: field 'label': expected a class index 0-{attribute.num_classes - 1} or a name "
                f"in {list(attribute.classes)}; {len(bad_labels)} row(s) got: {examples(bad_labels)}")
        if missing:
            raise DataFormatError(
                f"{path}: {len(missing)} image(s) missing (expected {split}/<id>.jpg or {split}/<id> "
                f"when the id has an image extension): {examples(missing)}")
        return records

    def _read(self) -> Iterator[FaceRecord]:
        tables = [self._read_split(split) for split in self.tables]
        for records in tables:
            yield from records
