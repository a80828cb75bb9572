"""The record every reader yields, and the errors readers raise.

A reader turns a data set's official on-disk layout into ``FaceRecord`` objects; everything
downstream (TFRecord converter, pipeline, evaluation) consumes only these.
"""
from __future__ import annotations

import csv
import dataclasses
import io
from typing import Iterable, Iterator, Sequence

import numpy as np

from facezoo.attributes import LabelSpace
from facezoo.errors import DataFormatError  # noqa: F401  (re-exported)
from facezoo.errors import MissingDataError


@dataclasses.dataclass
class FaceRecord:
    """One face image and what is known about it.

    Attributes:
        image: absolute path of the image file.
        labels: attribute name -> label, only for attributes that are known for this image
            (binary: 0/1; nominal and ordinal: class index). A missing key means "unknown" and
            becomes mask 0 downstream, so the image still trains the heads it has labels for.
        landmarks: optional (5, 2) float32 array of (x, y) pixels in the image: left eye, right eye,
            nose, left mouth corner, right mouth corner (the subject's left/right as seen in the image:
            point 0 is the eye on the image's left side).
        identity: optional person id (for identity-disjoint splits and verification).
        split: ``train``, ``val``, ``test`` or a fold name like ``fold_0``.
        source: the image path relative to the data set root (for reports and manifests).
    """

    image: str
    labels: dict
    landmarks: np.ndarray | None = None
    identity: str | None = None
    split: str = "train"
    source: str = ""

    def mask(self, label_space: LabelSpace) -> dict:
        """Attribute name -> 1.0 where a label is present, 0.0 where missing."""
        return {a.name: float(a.name in self.labels) for a in label_space}


@dataclasses.dataclass
class Problem:
    """A non-fatal issue with one item (a malformed file name, an unknown age string, ...)."""

    source: str
    reason: str


def problems_csv(problems: Iterable[Problem]) -> str:
    """All ``problems`` as CSV text with a ``source,reason`` header, in the order given (for a file that keeps
    every one of them, where a terminal shows only the first few)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "reason"])
    writer.writerows([p.source, p.reason] for p in problems)
    return buf.getvalue()


class Reader:
    """Base of all readers: ``records()`` yields ``FaceRecord``; ``problems`` lists skipped items.

    Subclasses set ``label_space`` and implement ``_read()``; each documents the layout it expects.
    """

    label_space: LabelSpace
    # True for readers that split by their own rules and take ``val_percent`` for the hash part of them.
    splits_itself = False

    def __init__(self, root):
        import os
        self.root = os.path.abspath(os.fspath(root))
        if not os.path.isdir(self.root):
            raise MissingDataError(f"{type(self).__name__}: data set root {self.root!r} is not a directory")
        self.problems: list[Problem] = []

    def records(self) -> Iterator[FaceRecord]:
        self.problems = []
        yield from self._read()

    def _read(self) -> Iterator[FaceRecord]:
        raise NotImplementedError

    def report(self, source: str, reason: str):
        self.problems.append(Problem(source, reason))

    def usable_labels(self, source: str, labels: dict, problems: Sequence[str]) -> dict | None:
        """Reports a row's label problems; returns its labels, or None (reported) when none is usable.

        For readers whose rows carry several labels of which some may be missing or out of range:
        the row is kept with the usable ones, and each left-out label is reported.
        """
        if not labels:
            self.report(source, f"row skipped: no usable label ({'; '.join(problems)})")
            return None
        for problem in problems:
            self.report(source, f"{problem}; label left out")
        return labels


def identity_split(records, val_percent: int = 20, salt: str = "facezoo-val"):
    """Re-splits records into ``train``/``val`` by identity, deterministically.

    A record goes to ``val`` iff ``int(md5(f"{salt}:{identity}"), 16) % 100 < val_percent``, so
    no person is on both sides and the split is the same on every machine. Records without an
    identity are split by their ``source`` the same way.

    Returns:
        New records (the inputs are not modified).
    """
    import hashlib
    out = []
    for r in records:
        key = r.identity if r.identity is not None else r.source
        h = int(hashlib.md5(f"{salt}:{key}".encode()).hexdigest(), 16) % 100
        out.append(dataclasses.replace(r, split="val" if h < val_percent else "train"))
    return out


def open_reader(reader_cls, root, val_percent: int):
    """``reader_cls(root)``, given ``val_percent`` too when the reader splits by its own rules."""
    return reader_cls(root, val_percent=val_percent) if reader_cls.splits_itself else reader_cls(root)
