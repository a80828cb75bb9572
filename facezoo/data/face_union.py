"""One face data set of every labelled source, re-framed by our own detector: what ``dmtl_face`` trains on.

``FaceUnionReader(root)`` reads CelebA (40 attributes), UTKFace (age, gender, race), LFW (gender from
``male_names.txt`` / ``female_names.txt``) and FER-2013 (expression) under one data root, finds each face with the
shipped RetinaFace, warps it onto the ``facezoo_face`` framing at 112x112 (``facezoo.face.align.align_to_spec``:
the crop ``analyze`` gives a model in that framing) and yields one record per face with the labels its source has
(the others are missing, so masked: every image trains only its own heads).

Layout under ``root`` (any subset; ``root`` may also be one source's own folder, e.g. ``.../lfw``)::

    celeba/    utkface/    lfw/    fer2013/          as each source's reader expects

Splits follow each source's rule, so a model validated here is validated on the same people as the single-source
models: CelebA by identity hash, UTKFace by file hash (``facezoo.data.splits``), FER-2013's official Training /
PublicTest (PrivateTest stays ``test``), and LFW by person: the people of View-2 folds ``lfw_val_folds`` (1-3) are
validation — the distilled face trunk never saw them — and everyone else trains.

Crops are PNG files under ``cache_dir`` (default ``$FACEZOO_CACHE/aligned`` or ``~/.cache/facezoo/aligned``),
computed once in resumable chunks; a record's ``image`` is its crop, its ``source`` the original
``<source>/<path>``. Faces the detector misses in the pre-cropped sources (CelebA, UTKFace, FER-2013) are aligned by
that source's mean landmarks; LFW photos without a face are left out (reported in ``problems``).
"""
from __future__ import annotations

import os
from typing import Iterator

import numpy as np

from facezoo.attributes import CELEBA_40, FER2013, UTKFACE, LabelSpace
from facezoo.data.records import FaceRecord, Reader
from facezoo.errors import MissingDataError

SOURCES = ("celeba", "utkface", "lfw", "fer2013")
FACE = LabelSpace("face", CELEBA_40.attributes + UTKFACE.attributes + FER2013.attributes)
LFW_VAL_FOLDS = (1, 2, 3)
PRE_CROPPED = {"celeba", "utkface", "fer2013"}
UPSCALE_BELOW = 96  # FER-2013's 48x48 faces are detected on a 2x enlargement


def default_cache_dir() -> str:
    base = os.environ.get("FACEZOO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "facezoo")
    return os.path.join(base, "aligned")


class LfwGenderReader(Reader):
    """LFW photos with the gender of the person (``male_names.txt`` / ``female_names.txt`` beside the images).

    Records: ``labels={"gender": 0 (male) | 1 (female)}`` in ``facezoo.attributes.GENDER``'s order,
    ``identity`` the person's name, ``split`` ``val`` for the people of View-2 folds ``val_folds`` and ``train``
    for everyone else. Names in both lists, or in neither, are reported and left out.
    """

    label_space = LabelSpace("lfw_gender", (UTKFACE["gender"],))

    def __init__(self, root, val_folds=LFW_VAL_FOLDS):
        super().__init__(root)
        self.lists = {g: os.path.join(self.root, f"{g}_names.txt") for g in ("male", "female")}
        missing = [p for p in self.lists.values() if not os.path.isfile(p)]
        if missing:
            raise MissingDataError(f"LfwGenderReader: {missing[0]} does not exist")
        self.val_folds = tuple(val_folds)

    def _read(self) -> Iterator[FaceRecord]:
        from facezoo.data.identities import lfw_evaluation_people
        from facezoo.data.lfw_pairs import lfw_image_dir
        gender = {}
        for index, g in enumerate(("male", "female")):
            with open(self.lists[g], encoding="utf-8") as f:
                for line in f:
                    name = line.strip()
                    if not name:
                        continue
                    if name in gender and gender[name] != index:
                        gender[name] = None
                    else:
                        gender[name] = index
        held = lfw_evaluation_people(self.root, self.val_folds) if self.val_folds else set()
        image_dir = lfw_image_dir(self.root)
        for person in sorted(os.listdir(image_dir)):
            folder = os.path.join(image_dir, person)
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                if not name.lower().endswith(".jpg"):
                    continue
                source = os.path.relpath(os.path.join(folder, name), self.root)
                label = gender.get(name)
                if label is None:
                    self.report(source, "image in both gender lists" if name in gender else "image in no gender list")
                    continue
                yield FaceRecord(image=os.path.join(folder, name), labels={"gender": label}, identity=person,
                                 split="val" if person in held else "train", source=source)


def source_records(name: str, root: str, val_percent: int = 20) -> list[FaceRecord]:
    """One source's records with that source's own split rule."""
    from facezoo.data import READERS
    from facezoo.data.datasets import DATASETS
    from facezoo.data.splits import split_records
    if name == "lfw":
        return list(LfwGenderReader(root).records())
    return split_records(READERS[name](root).records(), val_percent=val_percent,
                         official=DATASETS[name].official_split)


class FaceUnionReader(Reader):
    """CelebA + UTKFace + LFW gender + FER-2013, aligned by our detector onto ``facezoo_face`` (module docstring).

    Args:
        root: the data root holding the sources' folders, or one source's folder.
        cache_dir: where the aligned crops are kept (default ``default_cache_dir()``).
        sources: which sources to read (default: every one present).
        val_percent: the hash split's validation share for CelebA and UTKFace.
    """

    label_space = FACE
    splits_itself = True

    def __init__(self, root, cache_dir: str | None = None, sources=SOURCES, val_percent: int = 20,
                 progress: bool = True):
        super().__init__(root)
        base = os.path.basename(self.root.rstrip(os.sep))
        if base in SOURCES:  # one source's own folder
            self.folders = {base: self.root} if base in sources else {}
        else:
            self.folders = {s: os.path.join(self.root, s) for s in sources if os.path.isdir(os.path.join(self.root, s))}
        if not self.folders:
            raise MissingDataError(f"FaceUnionReader: {self.root} holds none of {', '.join(sources)}")
        self.cache_dir = cache_dir or default_cache_dir()
        self.val_percent = val_percent
        self.progress = progress

    def _read(self) -> Iterator[FaceRecord]:
        from facezoo.data.face_crops import aligned_crops
        from facezoo.models.face_trunk import TRUNK_SPEC
        for name, folder in self.folders.items():
            records = source_records(name, folder, self.val_percent)
            if not records:
                continue
            crops, found = aligned_crops(
                [r.image for r in records], TRUNK_SPEC, os.path.join(self.cache_dir, "chunks"),
                upscale_below=UPSCALE_BELOW, fallback="mean" if name in PRE_CROPPED else "none",
                progress=self.progress)
            out_dir = os.path.join(self.cache_dir, "png", name)
            for r, crop, ok in zip(records, crops, found):
                source = f"{name}/{os.path.relpath(r.image, folder)}"
                if not ok and name not in PRE_CROPPED:
                    self.report(source, "no face found")
                    continue
                path = os.path.join(out_dir, os.path.splitext(os.path.relpath(r.image, folder))[0] + ".png")
                if not os.path.isfile(path):
                    _write_png(crop, path)
                yield FaceRecord(image=path, labels=dict(r.labels), identity=f"{name}:{r.identity or r.source}",
                                 split=r.split, source=source)


class Fer2013FaceReader(FaceUnionReader):
    """FER-2013 alone, re-framed like the union: each 48x48 face detected on a 2x enlargement (mean landmarks where
    none is found) and warped onto ``facezoo_face`` at 112x112 — the crops ``dmtl_face`` trains on, under the same
    cache. Official splits (Training: train, PublicTest: val, PrivateTest: test). What ``expression_fer`` trains on.

    Args:
        root: the ``fer2013/`` folder (or a data root holding one).
        cache_dir, val_percent, progress: as ``FaceUnionReader``.
    """

    label_space = FER2013

    def __init__(self, root, cache_dir: str | None = None, val_percent: int = 20, progress: bool = True):
        super().__init__(root, cache_dir=cache_dir, sources=("fer2013",), val_percent=val_percent,
                         progress=progress)


def _write_png(pixels: np.ndarray, path: str):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}.png"
    Image.fromarray(pixels).save(tmp)
    os.replace(tmp, path)
