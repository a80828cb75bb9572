"""DISFA (Mavadati et al. 2013): frame-by-frame intensity of 12 action units for 27 people.

Layout under ``root``::

    ActionUnit_Labels/<subject>/<subject>_au<n>.txt   e.g. ActionUnit_Labels/SN001/SN001_au12.txt
    frames/<subject>/<frame>.png                      e.g. frames/SN001/00001.png (any zero padding; .jpg too)

``ActionUnit_Labels`` is the release's folder: one text file per subject and AU, no header, one line
``<frame>,<intensity>`` per video frame, frames numbered from 1 and intensity 0 (absent) to 5 (FACS A-E
as 1-5). DISFA ships videos (``Videos_LeftCamera/LeftVideoSN001_comp.avi``), not images: extract the
frames first, numbered from 1 as the label files are, e.g.
``ffmpeg -i Videos_LeftCamera/LeftVideoSN001_comp.avi frames/SN001/%05d.png`` (ffmpeg numbers from 1).

Labels: with ``labels="occurrence"`` (default) binary ``AU<n>`` = intensity >= ``threshold``, 2 (FACS
B) by the convention of DISFA results (EAC-Net, JAA-Net and most others; label space
``facezoo.attributes.DISFA``); with ``labels="intensity"`` the ordinal intensity 0-5
(``DISFA_INTENSITY``). Records: ``identity`` the subject (``SN001``), ``split`` ``train``: DISFA has no
official split; papers use 3 subject-independent folds, so split by subject
(``facezoo.data.records.identity_split``).

Problems reported (``Reader.problems``): a line that is not two whole numbers ``frame,intensity`` or has
an intensity outside 0-5 (``<file>:<line>``; that label left out), a frame listed twice in one file, a
missing AU file (that AU left out for the subject), a frame without an image (skipped), and folders or
files not named as above (skipped). Raised (``DataFormatError``): no subject folder; not one usable frame.
"""
from __future__ import annotations

import os
import re
from typing import Iterator

from facezoo.attributes import DISFA, DISFA_AUS, DISFA_INTENSITY, au_intensity_label_space, au_label_space
from facezoo.data.bp4d import frame_images
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import examples
from facezoo.errors import MissingDataError, UsageError

LABEL_DIR = "ActionUnit_Labels"
IMAGE_DIR = "frames"
SUBJECT = re.compile(r"^SN\d+$")
LABEL_LINE = re.compile(r"^\s*(?P<frame>\d+)\s*,\s*(?P<intensity>\d+)\s*$")
MAX_INTENSITY = 5
OCCURRENCE_THRESHOLD = 2
LABEL_MODES = ("occurrence", "intensity")


def read_intensities(path: str, report) -> dict[int, int]:
    """Frame -> intensity of one ``<subject>_au<n>.txt``; bad lines go to ``report(where, reason)``.

    ``where`` is ``<file name>:<line>``. Blank lines are skipped; a repeated frame keeps its first value.
    """
    name, values = os.path.basename(path), {}
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            match = LABEL_LINE.match(line)
            if not match:
                report(where, f"expected '<frame>,<intensity>' (two whole numbers), got {line.strip()[:60]!r}; "
                              "label left out")
                continue
            frame, intensity = int(match["frame"]), int(match["intensity"])
            if intensity > MAX_INTENSITY:
                report(where, f"intensity {intensity} of frame {frame} is outside 0-{MAX_INTENSITY}; label left out")
                continue
            if frame in values:
                report(where, f"frame {frame} is listed twice (first value {values[frame]} kept)")
                continue
            values[frame] = intensity
    return values


class DisfaReader(Reader):
    """Reads DISFA's per-AU intensity files and extracted frames (layout in the module docstring).

    Args:
        root: folder holding ``ActionUnit_Labels`` and the frames folder.
        aus: AUs to read as FACS numbers (default all 12 of ``DISFA_AUS``).
        labels: ``"occurrence"`` (binary, intensity >= ``threshold``) or ``"intensity"`` (ordinal 0-5).
        threshold: the occurrence threshold (1-5).
        labels_dir, images_dir: the two folders, relative to ``root``.

    Raises:
        UsageError: ``labels`` or ``threshold`` is not one of the allowed values.
        DataFormatError: ``labels_dir`` is missing or holds no ``SN<digits>`` folder; or, while reading,
            not one labelled frame has an image.
    """

    def __init__(self, root, aus=DISFA_AUS, labels: str = "occurrence", threshold: int = OCCURRENCE_THRESHOLD,
                 labels_dir: str = LABEL_DIR, images_dir: str = IMAGE_DIR):
        super().__init__(root)
        if labels not in LABEL_MODES:
            raise UsageError(f"DisfaReader: labels must be one of {LABEL_MODES}, got {labels!r}")
        if not (isinstance(threshold, int) and 1 <= threshold <= MAX_INTENSITY):
            raise UsageError(f"DisfaReader: threshold must be a whole number 1-{MAX_INTENSITY}, got {threshold!r}")
        self.aus = tuple(int(a) for a in aus)
        self.mode, self.threshold = labels, threshold
        if labels == "occurrence":
            self.label_space = DISFA if self.aus == DISFA_AUS else au_label_space("disfa", self.aus)
        else:
            self.label_space = (DISFA_INTENSITY if self.aus == DISFA_AUS
                                else au_intensity_label_space("disfa_intensity", self.aus))
        self.labels_dir = os.path.join(self.root, labels_dir)
        self.images_dir = os.path.join(self.root, images_dir)
        if not os.path.isdir(self.labels_dir):
            raise MissingDataError(f"DisfaReader: {self.labels_dir!r} does not exist; expected "
                                   f"{LABEL_DIR}/<subject>/<subject>_au<n>.txt under the root")
        entries = sorted(os.listdir(self.labels_dir))
        self.subjects = [e for e in entries if SUBJECT.match(e) and os.path.isdir(os.path.join(self.labels_dir, e))]
        self._odd = [e for e in entries if e not in self.subjects]
        if not self.subjects:
            raise DataFormatError(f"DisfaReader: no SN<digits> subject folder in {self.labels_dir!r}")

    def _read(self) -> Iterator[FaceRecord]:
        for entry in self._odd:
            self.report(f"{LABEL_DIR}/{entry}", "skipped: expected a subject folder named SN<digits>")
        found = 0
        for subject in self.subjects:
            for record in self._read_subject(subject):
                found += 1
                yield record
        if not found:
            raise DataFormatError(f"DisfaReader: not one labelled frame under {self.labels_dir} has an image "
                                  f"under {self.images_dir}/<subject>/")

    def _read_subject(self, subject: str) -> Iterator[FaceRecord]:
        folder = os.path.join(self.labels_dir, subject)
        expected = {f"{subject}_au{a}.txt": a for a in self.aus}
        for file in sorted(os.listdir(folder)):
            if file not in expected and not re.match(rf"^{subject}_au\d+\.txt$", file):
                self.report(f"{LABEL_DIR}/{subject}/{file}", f"skipped: expected {subject}_au<n>.txt")
        per_au: dict[int, dict[int, int]] = {}
        for file, au in expected.items():
            path = os.path.join(folder, file)
            if not os.path.isfile(path):
                self.report(f"{LABEL_DIR}/{subject}", f"no {file}: AU{au} left out for {subject}")
                continue
            per_au[au] = read_intensities(path, self.report)
        frames = sorted(set().union(*per_au.values())) if per_au else []
        image_folder = os.path.join(self.images_dir, subject)
        images = frame_images(image_folder)
        missing = [f for f in frames if f not in images]
        if missing:
            self.report(os.path.relpath(image_folder, self.root).replace(os.sep, "/"),
                        f"{len(missing)} labelled frame(s) have no image, skipped: frames "
                        f"{examples([str(f) for f in missing])}")
        for frame in frames:
            if frame not in images:
                continue
            labels = {}
            for au, values in per_au.items():
                if frame in values:
                    v = values[frame]
                    labels[f"AU{au}"] = int(v >= self.threshold) if self.mode == "occurrence" else v
            image = os.path.join(image_folder, images[frame])
            yield FaceRecord(image=image, labels=labels, identity=subject, split="train",
                             source=os.path.relpath(image, self.root).replace(os.sep, "/"))
