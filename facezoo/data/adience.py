"""Adience (Eidinger, Enbar, Hassner 2014): age group and gender from the official 5-fold files.

Layout under ``root``::

    fold_0_data.txt ... fold_4_data.txt
    faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>       (or, instead,)
    aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>

Each fold file is tab-separated with the header
``user_id original_image face_id age gender x y dx dy tilt_ang fiducial_yaw_angle fiducial_score``
(only the first five columns are used; the last line may lack its line end). When ``faces/``
exists its crops are used, otherwise those of ``aligned/``.

The real files' quirks, and what the reader does with them:

- ``age`` is a range like ``(25, 32)``, an off-grid range like ``(38, 42)``, a single number like
  ``35``, or ``None``; ``facezoo.attributes.adience_age_group`` maps it, and what it cannot map
  (``None``, numbers between groups such as 3, 13, 22, 35) leaves ``age_group`` absent, reported.
- ``gender`` is ``m`` (0), ``f`` (1), ``u`` (unknown) or empty; the last two leave ``gender``
  absent, reported.
- A row with neither label, a row with the wrong number of fields, and a row whose image file is
  missing are skipped and reported.

Records: ``split`` is ``fold_<k>`` (cross-validate over folds: the official folds are
subject-disjoint), ``identity`` the Flickr ``user_id``.
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

from facezoo.attributes import ADIENCE, adience_age_group
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import iter_table
from facezoo.errors import MissingDataError

NUM_FOLDS = 5
FOLD_COLUMNS = ("user_id", "original_image", "face_id", "age", "gender")
GENDERS = {"m": 0, "f": 1}
# Image folder -> file name prefix, in order of preference.
IMAGE_SETS = (("faces", "coarse_tilt_aligned_face"), ("aligned", "landmark_aligned_face"))


class AdienceReader(Reader):
    """Reads Adience fold files and their face crops (layout in the module docstring).

    Args:
        root: folder holding ``fold_<k>_data.txt`` and ``faces/`` or ``aligned/``.
        folds: fold indices (0-4) to read; None reads every fold file present.

    Raises:
        FileNotFoundError: a requested fold file is missing, or ``folds`` is None and none exists.
        DataFormatError: neither ``faces/`` nor ``aligned/`` exists, a fold file's header lacks a
            column, or (while reading) not one row has its image file.
        ValueError: ``folds`` names an index outside 0-4.
    """

    label_space = ADIENCE

    def __init__(self, root, folds: Sequence[int] | None = None):
        super().__init__(root)
        if folds is None:
            folds = [k for k in range(NUM_FOLDS) if os.path.isfile(self._fold_file(k))]
            if not folds:
                raise MissingDataError(
                    f"AdienceReader: no fold_<k>_data.txt (k = 0..{NUM_FOLDS - 1}) in {self.root!r}")
        bad = [k for k in folds if k not in range(NUM_FOLDS)]
        if bad:
            raise ValueError(f"AdienceReader: folds must be in 0..{NUM_FOLDS - 1}, got {bad}")
        missing = [self._fold_file(k) for k in folds if not os.path.isfile(self._fold_file(k))]
        if missing:
            raise MissingDataError(f"AdienceReader: fold file(s) {missing} do not exist")
        self.folds = list(folds)
        for folder, prefix in IMAGE_SETS:
            if os.path.isdir(os.path.join(self.root, folder)):
                self.image_folder, self.image_prefix = folder, prefix
                break
        else:
            raise DataFormatError(
                f"AdienceReader: {self.root!r} has neither faces/ nor aligned/; expected "
                f"faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>")

    def _fold_file(self, k: int) -> str:
        return os.path.join(self.root, f"fold_{k}_data.txt")

    def _read(self) -> Iterator[FaceRecord]:
        found = 0
        for k in self.folds:
            name = os.path.basename(self._fold_file(k))
            for row in iter_table(self._fold_file(k), FOLD_COLUMNS, delimiter="\t"):
                where = f"{name}:{row.line}"
                if row.error:
                    self.report(where, f"row skipped: {row.error}")
                    continue
                v = row.values
                if not (v["user_id"] and v["original_image"] and v["face_id"]):
                    self.report(where, "row skipped: user_id, original_image and face_id must be "
                                       f"non-empty, got {v['user_id']!r}, {v['original_image']!r}, "
                                       f"{v['face_id']!r}")
                    continue
                source = os.path.join(self.image_folder, v["user_id"],
                                      f"{self.image_prefix}.{v['face_id']}.{v['original_image']}")
                image = os.path.join(self.root, source)
                if not os.path.isfile(image):
                    self.report(where, f"row skipped: image {source} does not exist")
                    continue
                found += 1
                labels = self.usable_labels(where, *self._labels(v))
                if labels is None:
                    continue
                yield FaceRecord(image=image, labels=labels, identity=v["user_id"],
                                 split=f"fold_{k}", source=source)
        if not found:
            raise DataFormatError(
                f"AdienceReader: not one image of fold(s) {self.folds} exists under "
                f"{os.path.join(self.root, self.image_folder)}; expected "
                f"{self.image_folder}/<user_id>/{self.image_prefix}.<face_id>.<original_image>")

    @staticmethod
    def _labels(v: dict) -> tuple[dict, list[str]]:
        """Labels of one row, and a description of each value that cannot be used."""
        labels, problems = {}, []
        group = adience_age_group(v["age"])
        if group is None:
            problems.append(f"field 'age': {v['age']!r} fits no age group {ADIENCE['age_group'].classes}")
        else:
            labels["age_group"] = group
        gender = GENDERS.get(v["gender"].lower())
        if gender is None:
            problems.append(f"field 'gender': expected 'm' or 'f', got {v['gender']!r}")
        else:
            labels["gender"] = gender
        return labels, problems
