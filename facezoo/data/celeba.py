"""CelebA (aligned & cropped) in its official layout.

Layout under ``root``::

    img_align_celeba/000001.jpg ...
    list_attr_celeba.txt              line 1: row count; line 2: the 40 attribute names;
                                      then ``000001.jpg  -1  1 ...`` (40 values in {1, -1})
    list_eval_partition.txt           ``000001.jpg 0`` (0 train, 1 val, 2 test)
    identity_CelebA.txt               optional: ``000001.jpg 2880``
    list_landmarks_align_celeba.txt   optional: count, header, ``000001.jpg x1 y1 ... x5 y5``

The official files use CRLF line ends and runs of spaces; both are accepted. The attribute file is
the index: every image it lists must exist, and every ``.jpg`` in ``img_align_celeba/`` must be
listed, so a half-copied download fails loudly instead of training on a silent subset.
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from facezoo.attributes import CELEBA_40
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.errors import MissingDataError

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
LANDMARKS_FILE = "list_landmarks_align_celeba.txt"
PARTITIONS = {"0": "train", "1": "val", "2": "test"}
LANDMARK_NAMES = ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
                  "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y")


def _examples(items, limit=5) -> str:
    """``'a', 'b', ... (N in all)`` for error messages."""
    items = list(items)
    shown = ", ".join(repr(i) for i in items[:limit])
    return f"{shown}{', ...' if len(items) > limit else ''} ({len(items)} in all)"


def _lines(path: str) -> list[str]:
    """The file's lines with CR/LF stripped; blank trailing lines dropped."""
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\r\n") for line in f]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _two_column(path: str) -> dict[str, str]:
    """Reads ``name value`` rows (partition and identity files) into a dict."""
    out = {}
    bad = []
    for number, line in enumerate(_lines(path), start=1):
        fields = line.split()
        if len(fields) != 2:
            bad.append(f"line {number}: {line!r}")
            continue
        out[fields[0]] = fields[1]
    if bad:
        raise DataFormatError(f"{path}: expected 'image value' on every line; malformed: {_examples(bad)}")
    return out


class CelebaReader(Reader):
    """Reads CelebA's aligned images, 40 binary attributes, partition, identities and landmarks.

    Args:
        root: folder holding ``img_align_celeba/`` and the label files.
        partition_file: ``True`` to take splits from ``list_eval_partition.txt`` (required then),
            ``False`` to put every image in ``train`` (recipes that re-split by identity), or a path
            to another file in the same ``image 0|1|2`` format.

    Labels are attribute name -> 0/1 (the file's -1 becomes 0). Identity and landmarks are filled
    when their optional files exist; landmarks are (5, 2) pixels in the aligned image.

    Raises:
        FileNotFoundError: the image folder or a required file is missing.
        DataFormatError: a header, row count, value or image listing does not match.
    """

    label_space = CELEBA_40

    def __init__(self, root, partition_file=True):
        super().__init__(root)
        self.partition_file = partition_file

    def _path(self, name: str, required: bool = True) -> str | None:
        path = os.path.join(self.root, name)
        if not os.path.exists(path):
            if required:
                raise MissingDataError(f"CelebaReader: {path} is missing (expected the official CelebA layout)")
            return None
        return path

    def _read_attributes(self) -> list[tuple[str, dict]]:
        path = self._path(ATTR_FILE)
        lines = _lines(path)
        if len(lines) < 2:
            raise DataFormatError(f"{path}: expected a count line and a header line, got {len(lines)} lines")
        try:
            declared = int(lines[0].strip())
        except ValueError:
            raise DataFormatError(f"{path}: line 1 must be the number of rows, got {lines[0]!r}") from None
        names = lines[1].split()
        if names != CELEBA_40.names:
            diff = [f"column {i + 1}: expected {e!r}, got {g!r}"
                    for i, (e, g) in enumerate(zip(CELEBA_40.names, names)) if e != g]
            if len(names) != len(CELEBA_40.names):
                diff.insert(0, f"expected {len(CELEBA_40.names)} names, got {len(names)}")
            raise DataFormatError(f"{path}: line 2 must list CelebA's 40 attributes in official order; "
                                  f"{_examples(diff)}")
        rows, bad = [], []
        for number, line in enumerate(lines[2:], start=3):
            fields = line.split()
            if len(fields) != 41 or any(v not in ("1", "-1") for v in fields[1:]):
                bad.append(f"line {number}: {line[:60]!r}")
                continue
            rows.append((fields[0], {n: int(v == "1") for n, v in zip(names, fields[1:])}))
        if bad:
            raise DataFormatError(f"{path}: every row must be an image name and 40 values in {{1, -1}}; "
                                  f"malformed: {_examples(bad)}")
        if len(rows) != declared:
            raise DataFormatError(f"{path}: line 1 declares {declared} rows, found {len(rows)}")
        return rows

    def _read_landmarks(self) -> dict[str, np.ndarray]:
        path = self._path(LANDMARKS_FILE, required=False)
        if path is None:
            return {}
        lines = _lines(path)
        if len(lines) < 2 or tuple(lines[1].split()) != LANDMARK_NAMES:
            raise DataFormatError(f"{path}: line 2 must be {' '.join(LANDMARK_NAMES)!r}, "
                                  f"got {lines[1] if len(lines) > 1 else ''!r}")
        out, bad = {}, []
        for number, line in enumerate(lines[2:], start=3):
            fields = line.split()
            try:
                if len(fields) != 11:
                    raise ValueError
                out[fields[0]] = np.array([float(v) for v in fields[1:]], np.float32).reshape(5, 2)
            except ValueError:
                bad.append(f"line {number}: {line[:60]!r}")
        if bad:
            raise DataFormatError(f"{path}: every row must be an image name and 10 numbers; "
                                  f"malformed: {_examples(bad)}")
        return out

    def _read_partition(self, names: list[str]) -> dict[str, str]:
        if self.partition_file is False:
            return {n: "train" for n in names}
        path = (self._path(PARTITION_FILE) if self.partition_file is True
                else os.path.abspath(os.fspath(self.partition_file)))
        if not os.path.exists(path):
            raise MissingDataError(f"CelebaReader: partition file {path} is missing")
        table = _two_column(path)
        unknown = [f"{n}: {v!r}" for n, v in table.items() if v not in PARTITIONS]
        if unknown:
            raise DataFormatError(f"{path}: partition must be 0, 1 or 2; got {_examples(unknown)}")
        missing = [n for n in names if n not in table]
        if missing:
            raise DataFormatError(f"{path}: no partition for images listed in {ATTR_FILE}: {_examples(missing)}")
        return {n: PARTITIONS[table[n]] for n in names}

    def _check_images(self, names: list[str]):
        image_dir = self._path(IMAGE_DIR)
        on_disk = {f for f in os.listdir(image_dir) if f.lower().endswith(".jpg")}
        listed = set(names)
        missing = sorted(listed - on_disk)
        if missing:
            raise DataFormatError(f"{os.path.join(self.root, ATTR_FILE)} lists images that are not in "
                                  f"{image_dir}: {_examples(missing)}")
        extra = sorted(on_disk - listed)
        if extra:
            raise DataFormatError(f"{image_dir} holds images that {ATTR_FILE} does not list: {_examples(extra)}")

    def _read(self) -> Iterator[FaceRecord]:
        rows = self._read_attributes()
        names = [n for n, _ in rows]
        self._check_images(names)
        split = self._read_partition(names)
        identity_path = self._path(IDENTITY_FILE, required=False)
        identity = _two_column(identity_path) if identity_path else {}
        landmarks = self._read_landmarks()
        for name, labels in rows:
            source = f"{IMAGE_DIR}/{name}"
            yield FaceRecord(image=os.path.join(self.root, IMAGE_DIR, name), labels=labels,
                             landmarks=landmarks.get(name), identity=identity.get(name),
                             split=split[name], source=source)
