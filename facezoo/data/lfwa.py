"""LFWA (Liu et al. 2015): LFW images annotated with CelebA's 40 binary attributes.

Layout under ``root``::

    lfw*/<Name>/<Name>_<NNNN>.jpg      one LFW image folder (lfw/, lfw-deepfunneled/, ...)
    list_attr_lfwa.txt                 CelebA-style attribute file (name set by ``attributes_file``)

The attribute file has CelebA's format: line 1 the number of rows, line 2 the 40 attribute names
in CelebA's official order, then one row per image, ``<Name>_<NNNN>.jpg`` and 40 values separated
by runs of spaces (CRLF or LF line ends). Values are ``1`` (yes), ``-1`` (no) or ``0`` (not
annotated: that label is left out of the record, so it is masked downstream).

Rows with the wrong number of fields, another value, only zeros, an image name not of the form
``<Name>_<NNNN>.jpg``, a repeated image, or an image missing from disk are reported and skipped;
a row count that differs from line 1, or attribute names that differ from CelebA's, raise.

Records: ``identity`` is the person's name (LFW folders are people); ``split`` is ``train`` for
every image (LFWA has no official split file: split by person with
``facezoo.data.records.identity_split``).
"""
from __future__ import annotations

import os
from typing import Iterator

from facezoo.attributes import LFWA_40
from facezoo.data.lfw_pairs import LFW_IMAGE, lfw_image_dir
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.errors import MissingDataError

VALUES = {"1": 1, "-1": 0}
NOT_ANNOTATED = "0"


class LfwaReader(Reader):
    """Reads LFW images with LFWA attribute labels (layout in the module docstring).

    Args:
        root: folder holding one ``lfw*`` image folder and the attribute file.
        attributes_file: the attribute file, relative to ``root`` or absolute.

    Raises:
        FileNotFoundError: the attribute file does not exist.
        DataFormatError: ``root`` holds several ``lfw*`` folders; or, while reading, the attribute
            file's count or names line is wrong, or not one listed image exists.
    """

    label_space = LFWA_40

    def __init__(self, root, attributes_file: str = "list_attr_lfwa.txt"):
        super().__init__(root)
        self.attributes_file = os.path.join(self.root, os.fspath(attributes_file))
        if not os.path.isfile(self.attributes_file):
            raise MissingDataError(f"LfwaReader: attribute file {self.attributes_file!r} does not exist")
        self.image_dir = lfw_image_dir(self.root)

    def _rows(self) -> list[tuple[str, str, list[str]]]:
        """Checks the count and names lines; returns ``(where, image name, values)`` per data row."""
        path = self.attributes_file
        with open(path, encoding="utf-8") as f:
            lines = [line.split() for line in f]
        while lines and not lines[-1]:
            lines.pop()
        if len(lines) < 2:
            raise DataFormatError(f"{path}: expected a count line and a names line, got {len(lines)} line(s)")
        if len(lines[0]) != 1 or not lines[0][0].isdigit():
            raise DataFormatError(f"{path}:1: expected the number of rows, got {' '.join(lines[0])!r}")
        if lines[1] != LFWA_40.names:
            wrong = [f"column {i + 1}: expected {e!r}, got {g!r}"
                     for i, (e, g) in enumerate(zip(LFWA_40.names, lines[1])) if e != g]
            raise DataFormatError(
                f"{path}:2: expected CelebA's 40 attribute names in official order, got "
                f"{len(lines[1])} names; {'; '.join(wrong[:5])}")
        declared, rows = int(lines[0][0]), lines[2:]
        if len(rows) != declared:
            raise DataFormatError(f"{path}:1: declares {declared} rows, found {len(rows)} (lines 3-{len(lines)})")
        name = os.path.basename(path)
        return [(f"{name}:{number}", fields[0] if fields else "", fields[1:])
                for number, fields in enumerate(rows, start=3)]

    def _read(self) -> Iterator[FaceRecord]:
        seen, found = set(), 0
        for where, file, values in self._rows():
            match = LFW_IMAGE.match(file)
            if not match:
                self.report(where, f"row skipped: expected an image name <Name>_<NNNN>.jpg, got {file!r}")
                continue
            if len(values) != len(LFWA_40):
                self.report(where, f"row skipped: expected {len(LFWA_40)} values, got {len(values)}")
                continue
            bad = [f"{n}={v!r}" for n, v in zip(LFWA_40.names, values) if v not in VALUES and v != NOT_ANNOTATED]
            if bad:
                self.report(where, f"row skipped: values must be 1, -1 or 0, got {', '.join(bad[:5])}")
                continue
            if file in seen:
                self.report(where, f"row skipped: {file} is listed again")
                continue
            seen.add(file)
            image = os.path.join(self.image_dir, match["name"], file)
            source = os.path.relpath(image, self.root)
            if not os.path.isfile(image):
                self.report(where, f"row skipped: image {source} does not exist")
                continue
            found += 1
            labels = {n: VALUES[v] for n, v in zip(LFWA_40.names, values) if v in VALUES}
            if not labels:
                self.report(where, "row skipped: every value is 0 (not annotated)")
                continue
            yield FaceRecord(image=image, labels=labels, identity=match["name"], split="train", source=source)
        if not found:
            raise DataFormatError(
                f"LfwaReader: not one image listed in {self.attributes_file} exists under {self.image_dir}")
