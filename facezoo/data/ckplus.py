"""CK+48 (Extended Cohn-Kanade, Lucey et al. 2010): 48x48 grey peak-expression frames.

Layout under ``root``::

    CK+48/<class>/S<subject>_<sequence>_<frame>.png      e.g. CK+48/happy/S010_006_00000015.png

with ``<class>`` one of ``anger contempt disgust fear happy sadness surprise``. Files not named
``S<digits>_<digits>_<digits>.png`` are reported and skipped; an unknown class folder raises.

Records: ``identity`` is the subject (``S010``); ``split`` is ``train`` (CK+ has no official
split). Consecutive frames of one sequence are near-duplicates, so split by subject, never by
image: ``facezoo.data.records.identity_split``.
"""
from __future__ import annotations

import os
import re
from typing import Iterator

from facezoo.attributes import CKPLUS, CKPLUS_EXPRESSIONS
from facezoo.data.records import DataFormatError, FaceRecord, Reader

IMAGE_DIR = "CK+48"
FRAME = re.compile(r"^(?P<subject>S\d+)_\d+_\d+\.png$")


class CkPlusReader(Reader):
    """Reads CK+48's class folders (layout in the module docstring).

    Args:
        root: folder holding ``CK+48/``.

    Raises:
        DataFormatError: ``CK+48/`` is missing; or, while reading, a class folder is not a CK+
            expression, or no image is found.
    """

    label_space = CKPLUS

    def __init__(self, root):
        super().__init__(root)
        self.image_dir = os.path.join(self.root, IMAGE_DIR)
        if not os.path.isdir(self.image_dir):
            raise DataFormatError(f"CkPlusReader: {self.image_dir!r} does not exist; expected "
                                  f"{IMAGE_DIR}/<class>/S<subject>_<sequence>_<frame>.png under the root")

    def _read(self) -> Iterator[FaceRecord]:
        classes = sorted(e.name for e in os.scandir(self.image_dir) if e.is_dir())
        unknown = [c for c in classes if c not in CKPLUS_EXPRESSIONS]
        if unknown:
            raise DataFormatError(f"CkPlusReader: {self.image_dir} has class folder(s) {unknown}; "
                                  f"expected only {list(CKPLUS_EXPRESSIONS)}")
        found = 0
        for cls in classes:
            for file in sorted(os.listdir(os.path.join(self.image_dir, cls))):
                source = f"{IMAGE_DIR}/{cls}/{file}"
                match = FRAME.match(file)
                if not match:
                    self.report(source, "skipped: expected S<subject>_<sequence>_<frame>.png")
                    continue
                found += 1
                yield FaceRecord(image=os.path.join(self.root, source),
                                 labels={"expression": CKPLUS_EXPRESSIONS.index(cls)},
                                 identity=match["subject"], split="train", source=source)
        if not found:
            raise DataFormatError(f"CkPlusReader: no S<subject>_<sequence>_<frame>.png under {self.image_dir}")
