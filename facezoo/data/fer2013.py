"""FER-2013 (Goodfellow et al. 2013): 48x48 grey faces, 7 expressions, as the CSV or as image folders.

CSV form (``Fer2013CsvReader``): ``fer2013.csv`` with the header ``emotion,pixels,Usage`` (column
names compared case-insensitively, spaces ignored, any order; ``Usage`` may be absent, as in the
challenge's ``train.csv``: every row is then ``train``). ``emotion`` is the index in
``FER_EXPRESSIONS`` order (0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral);
``pixels`` 2304 space-separated integers 0-255, row-major 48x48; ``Usage`` ``Training`` (train),
``PublicTest`` (val) or ``PrivateTest`` (test). Records point at image files, so each row's pixels
are written once as a PNG into a cache folder (see ``Fer2013CsvReader``).

Folder form (``Fer2013FolderReader``), the Kaggle image release::

    train/<class>/Training_<id>.jpg
    test/<class>/PublicTest_<id>.jpg and PrivateTest_<id>.jpg
    validation/<class>/PublicTest_<id>.jpg       (optional; some copies split test/ this way)

with ``<class>`` one of ``angry disgust fear happy neutral sad surprise``. The split comes from the
file name's prefix (``Training`` train, ``PublicTest`` val, ``PrivateTest`` test), not the folder.
FER-2013 has no identities.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from typing import Iterator

import numpy as np
from PIL import Image

from facezoo.attributes import FER2013, FER_EXPRESSIONS
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import iter_table
from facezoo.errors import MissingDataError

SIDE = 48
USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SPLIT_FOLDERS = ("train", "validation", "test")
FOLDER_IMAGE = re.compile(r"^(?P<usage>Training|PublicTest|PrivateTest)_\d+\.(?i:jpg|jpeg|png)$")


def parse_pixels(text: str) -> np.ndarray | None:
    """A (48, 48) uint8 image from 2304 space-separated integers 0-255, or None when malformed."""
    fields = text.split()
    if len(fields) != SIDE * SIDE:
        return None
    try:
        values = np.array(fields, dtype=np.int64)
    except ValueError:
        return None
    if values.min() < 0 or values.max() > 255:
        return None
    return values.astype(np.uint8).reshape(SIDE, SIDE)


def write_png_atomically(pixels: np.ndarray, path: str):
    """Writes ``pixels`` as a PNG at ``path`` through a temporary file in the same folder, so a
    crash never leaves a truncated image under the final name."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".png.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(pixels).save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class Fer2013CsvReader(Reader):
    """Reads ``fer2013.csv`` and writes each row's face as a PNG into ``cache_dir`` once.

    Each PNG is named ``<row>-<md5 of the pixels text, 12 hex digits>.png``: the name changes with
    the content, so a cache built from another CSV is never mistaken for this one's, and existing
    files are reused without decoding. Rows with a wrong pixel count or value, an emotion outside
    0-6, an unknown ``Usage`` or the wrong number of fields are reported and skipped.

    Args:
        csv_path: the CSV file.
        cache_dir: folder for the PNGs (created if missing); the records' root.

    Raises:
        FileNotFoundError: ``csv_path`` does not exist.
        DataFormatError: (while reading) the header lacks ``emotion`` or ``pixels``, or no row is usable.
    """

    label_space = FER2013

    def __init__(self, csv_path, cache_dir):
        self.csv_path = os.path.abspath(os.fspath(csv_path))
        if not os.path.isfile(self.csv_path):
            raise MissingDataError(f"Fer2013CsvReader: {self.csv_path!r} does not exist")
        os.makedirs(cache_dir, exist_ok=True)
        super().__init__(cache_dir)

    def _read(self) -> Iterator[FaceRecord]:
        name, found = os.path.basename(self.csv_path), 0
        for index, row in enumerate(iter_table(self.csv_path, ("emotion", "pixels"))):
            where = f"{name}:{row.line}"
            if row.error:
                self.report(where, f"row skipped: {row.error}")
                continue
            v = row.values
            emotion = v["emotion"]
            if not (emotion.isdigit() and int(emotion) < len(FER_EXPRESSIONS)):
                self.report(where, f"row skipped: field 'emotion': expected 0-{len(FER_EXPRESSIONS) - 1}, "
                                   f"got {emotion!r}")
                continue
            usage = v.get("usage", "Training")
            if usage not in USAGE_SPLITS:
                self.report(where, f"row skipped: field 'usage': expected one of {sorted(USAGE_SPLITS)}, "
                                   f"got {usage!r}")
                continue
            digest = hashlib.md5(v["pixels"].encode()).hexdigest()[:12]
            source = f"{index:05d}-{digest}.png"
            image = os.path.join(self.root, source)
            if not os.path.isfile(image):
                pixels = parse_pixels(v["pixels"])
                if pixels is None:
                    self.report(where, f"row skipped: field 'pixels': expected {SIDE * SIDE} integers 0-255, "
                                       f"got {len(v['pixels'].split())} fields {v['pixels'][:40]!r}")
                    continue
                write_png_atomically(pixels, image)
            found += 1
            yield FaceRecord(image=image, labels={"expression": int(emotion)}, split=USAGE_SPLITS[usage],
                             source=source)
        if not found:
            raise DataFormatError(f"Fer2013CsvReader: not one usable row in {self.csv_path}")


class Fer2013FolderReader(Reader):
    """Reads FER-2013 in the Kaggle image-folder layout (see the module docstring).

    Files whose names are not ``Training_<id>``, ``PublicTest_<id>`` or ``PrivateTest_<id>`` with
    a .jpg/.jpeg/.png extension (e.g. augmented copies such as ``Training_1.jpg3.jpg``) are
    reported and skipped.

    Args:
        root: folder holding ``train/`` and/or ``test/`` (and optionally ``validation/``).

    Raises:
        DataFormatError: ``root`` has none of the split folders; or, while reading, a class folder
            is not a FER-2013 expression, or no image is found.
    """

    label_space = FER2013

    def __init__(self, root):
        super().__init__(root)
        self.folders = [f for f in SPLIT_FOLDERS if os.path.isdir(os.path.join(self.root, f))]
        if not self.folders:
            raise DataFormatError(f"Fer2013FolderReader: {self.root!r} has none of {list(SPLIT_FOLDERS)}; "
                                  f"expected train/<class>/Training_<id>.jpg")

    def _read(self) -> Iterator[FaceRecord]:
        found = 0
        for folder in self.folders:
            classes = sorted(e.name for e in os.scandir(os.path.join(self.root, folder)) if e.is_dir())
            unknown = [c for c in classes if c not in FER_EXPRESSIONS]
            if unknown:
                raise DataFormatError(
                    f"Fer2013FolderReader: {os.path.join(self.root, folder)} has class folder(s) {unknown}; "
                    f"expected only {sorted(FER_EXPRESSIONS)}")
            for cls in classes:
                for file in sorted(os.listdir(os.path.join(self.root, folder, cls))):
                    source = f"{folder}/{cls}/{file}"
                    match = FOLDER_IMAGE.match(file)
                    if not match:
                        self.report(source, "skipped: expected Training_<id>, PublicTest_<id> or "
                                            "PrivateTest_<id> with .jpg/.jpeg/.png")
                        continue
                    found += 1
                    yield FaceRecord(image=os.path.join(self.root, source),
                                     labels={"expression": FER_EXPRESSIONS.index(cls)},
                                     split=USAGE_SPLITS[match["usage"]], source=source)
        if not found:
            raise DataFormatError(f"Fer2013FolderReader: no image found under {self.folders} in {self.root!r}")
