"""UTKFace (aligned & cropped) in its official layout: the labels are in the file names.

Layout: ``root/UTKFace/[age]_[gender]_[race]_[date&time].jpg.chip.jpg``, or the same files directly
in ``root``. ``age`` is in years, ``gender`` 0 male / 1 female, ``race`` 0 white, 1 black, 2 asian,
3 indian, 4 others. A few official names are malformed (e.g. the race field is missing); they are
reported through ``Reader.report`` and skipped, so one bad name never stops a conversion.
"""
from __future__ import annotations

import os
from typing import Iterator

from facezoo.attributes import MAX_AGE, UTKFACE, UTKFACE_RACES
from facezoo.data.records import FaceRecord, Reader
from facezoo.errors import MissingDataError

IMAGE_DIR = "UTKFace"
# Oldest plausible age; larger numbers are typos, not people. Ages above MAX_AGE are clipped to it.
AGE_LIMIT = 120


class UtkFaceReader(Reader):
    """Reads UTKFace images with age, gender and race parsed from their names.

    Args:
        root: folder holding ``UTKFace/`` (or the ``*.jpg`` files themselves).

    Records carry ``age`` = min(age, ``MAX_AGE``), ``gender`` and ``race`` as class indices,
    identity None (UTKFace has none) and split ``train`` (recipes re-split). Records come in
    sorted file-name order.
    """

    label_space = UTKFACE

    def _read(self) -> Iterator[FaceRecord]:
        sub = os.path.join(self.root, IMAGE_DIR)
        folder, prefix = (sub, IMAGE_DIR + "/") if os.path.isdir(sub) else (self.root, "")
        names = sorted(f for f in os.listdir(folder) if f.lower().endswith(".jpg"))
        if not names:
            raise MissingDataError(f"UtkFaceReader: no .jpg images in {folder}")
        for name in names:
            source = prefix + name
            labels = self._parse(name)
            if labels is None:
                continue
            yield FaceRecord(image=os.path.join(folder, name), labels=labels, identity=None,
                             split="train", source=source)

    def _parse(self, name: str) -> dict | None:
        """Labels from ``age_gender_race_date.jpg.chip.jpg``, or None after reporting why not."""
        stem = name.split(".", 1)[0]
        fields = stem.split("_")
        if len(fields) != 4:
            self.report(name, f"expected 4 '_'-separated fields age_gender_race_date, got {len(fields)}")
            return None
        try:
            age, gender, race = (int(v) for v in fields[:3])
        except ValueError:
            self.report(name, f"age, gender and race must be integers, got {fields[:3]}")
            return None
        if not 0 <= age <= AGE_LIMIT:
            self.report(name, f"age must be in 0..{AGE_LIMIT}, got {age}")
        elif gender not in (0, 1):
            self.report(name, f"gender must be 0 or 1, got {gender}")
        elif not 0 <= race < len(UTKFACE_RACES):
            self.report(name, f"race must be in 0..{len(UTKFACE_RACES) - 1}, got {race}")
        else:
            return {"age": min(age, MAX_AGE), "gender": gender, "race": race}
        return None
