"""LFW (Huang et al. 2007): the View-2 verification pairs, and the images grouped by person.

Layout::

    <root>/lfw*/<Name>/<Name>_<NNNN>.jpg     (lfw/, lfw-deepfunneled/, lfw_funneled/, ...: one of them)
    pairs.txt

``root`` may also be the image folder itself (the one holding the ``<Name>/`` folders).
``pairs.txt`` is the standard View-2 file: a header ``<folds>\\t<n>``, then per fold ``n``
same-person lines ``<Name>\\t<i>\\t<j>`` followed by ``n`` different-person lines
``<Name1>\\t<i>\\t<Name2>\\t<j>``; image ``i`` of a person is ``<Name>/<Name>_<i:04d>.jpg``.
View-2 folds are person-disjoint, so a fold is a valid unit of cross-validation.
"""
from __future__ import annotations

import os
import re
from typing import Iterator, NamedTuple

from facezoo.attributes import LabelSpace
from facezoo.data.records import DataFormatError, FaceRecord, Reader
from facezoo.data.tables import examples
from facezoo.errors import MissingDataError

LFW_IMAGE = re.compile(r"^(?P<name>.+)_(?P<index>\d{4})\.jpg$")
# Identities carry no attribute labels.
LFW_IDENTITIES = LabelSpace("lfw_identities", ())


class LfwPair(NamedTuple):
    """One verification pair: two image paths, whether they show the same person, the 1-based fold."""

    path_a: str
    path_b: str
    same: bool
    fold: int


def lfw_image_dir(root: str) -> str:
    """Returns the folder holding LFW's ``<Name>/`` folders: ``root``'s one ``lfw*`` sub-folder, or ``root``.

    Raises:
        DataFormatError: ``root`` has several ``lfw*`` sub-folders (which one is meant is unclear).
    """
    candidates = sorted(d for d in os.listdir(root)
                        if d.lower().startswith("lfw") and os.path.isdir(os.path.join(root, d)))
    if len(candidates) > 1:
        raise DataFormatError(
            f"{root!r} has several LFW image folders {candidates}; pass the one to use as the root")
    return os.path.join(root, candidates[0]) if candidates else root


def lfw_image_path(image_dir: str, name: str, index: int) -> str:
    """Path of image ``index`` (1-based) of person ``name``: ``<image_dir>/<Name>/<Name>_<NNNN>.jpg``."""
    return os.path.join(image_dir, name, f"{name}_{index:04d}.jpg")


def read_pairs(pairs_txt: str, images_root: str) -> list[LfwPair]:
    """Reads a View-2 ``pairs.txt`` (format in the module docstring) and checks every image exists.

    Args:
        pairs_txt: the pairs file.
        images_root: the LFW image folder, or a folder holding exactly one ``lfw*`` image folder.

    Returns:
        Pairs in file order: per fold its same-person pairs, then its different-person pairs.

    Raises:
        FileNotFoundError: ``pairs_txt`` does not exist.
        DataFormatError: the header is not two positive integers; a line has the wrong number of
            fields for its position or a non-integer image number; the file has fewer or more
            pair lines than the header promises; or images are missing (examples given).
    """
    if not os.path.isfile(pairs_txt):
        raise MissingDataError(f"pairs file {pairs_txt!r} does not exist")
    image_dir = lfw_image_dir(os.fspath(images_root))
    with open(pairs_txt, encoding="utf-8") as f:
        lines = [(number, line.split()) for number, line in enumerate(f, start=1) if line.strip()]
    if not lines:
        raise DataFormatError(f"{pairs_txt}: the file is empty; expected a header '<folds>\\t<n>'")
    header_line, header = lines[0]
    if len(header) != 2 or not all(h.isdigit() and int(h) > 0 for h in header):
        raise DataFormatError(
            f"{pairs_txt}:{header_line}: header must be two positive integers '<folds>\\t<n>', got {header}")
    folds, n = int(header[0]), int(header[1])
    body = lines[1:]
    expected = 2 * folds * n
    pairs, missing = [], []
    for i, (line_no, fields) in enumerate(body[:expected]):
        fold, same = i // (2 * n) + 1, (i % (2 * n)) < n
        if same and len(fields) == 3:
            names, numbers = (fields[0], fields[0]), (fields[1], fields[2])
        elif not same and len(fields) == 4:
            names, numbers = (fields[0], fields[2]), (fields[1], fields[3])
        else:
            kind = "same-person '<Name> <i> <j>'" if same else "different-person '<Name1> <i> <Name2> <j>'"
            raise DataFormatError(
                f"{pairs_txt}:{line_no}: fold {fold} expects a {kind} line here, got {len(fields)} "
                f"fields {fields}")
        if not all(v.isdigit() and int(v) > 0 for v in numbers):
            raise DataFormatError(
                f"{pairs_txt}:{line_no}: image numbers must be positive integers, got {list(numbers)}")
        paths = [lfw_image_path(image_dir, name, int(v)) for name, v in zip(names, numbers)]
        missing += [f"line {line_no}: {os.path.relpath(p, image_dir)}" for p in paths
                    if not os.path.isfile(p)]
        pairs.append(LfwPair(paths[0], paths[1], same, fold))
    if len(body) != expected:
        where = (f"first extra line: {body[expected][0]}" if len(body) > expected
                 else f"last line: {body[-1][0] if body else header_line}")
        raise DataFormatError(
            f"{pairs_txt}: header (line {header_line}) promises {folds} folds x 2 x {n} = {expected} "
            f"pair lines, found {len(body)} ({where})")
    if missing:
        raise DataFormatError(
            f"{pairs_txt}: {len(missing)} image(s) referenced by pairs are missing under {image_dir}: "
            f"{examples(missing)}")
    return pairs


class LfwIdentityReader(Reader):
    """Yields every LFW image with its person as identity, to train verification embeddings.

    Records carry no labels (``label_space`` is empty) and ``split`` ``train``; split by person
    with ``facezoo.data.records.identity_split`` when a validation set is needed. Files that are
    not named ``<Name>_<NNNN>.jpg`` inside their person's folder are reported and skipped.

    Args:
        root: the LFW image folder, or a folder holding exactly one ``lfw*`` image folder.
        min_images: keep only people with at least this many images (2 or more for pair or
            triplet sampling).

    Raises:
        DataFormatError: ``root`` has several ``lfw*`` folders, or (while reading) no image at all.
        ValueError: ``min_images`` < 1.
    """

    label_space = LFW_IDENTITIES

    def __init__(self, root, min_images: int = 1):
        super().__init__(root)
        if min_images < 1:
            raise ValueError(f"LfwIdentityReader: min_images must be >= 1, got {min_images}")
        self.min_images = min_images
        self.image_dir = lfw_image_dir(self.root)

    def _read(self) -> Iterator[FaceRecord]:
        people = sorted(e.name for e in os.scandir(self.image_dir) if e.is_dir())
        total = 0
        for name in people:
            files = []
            for file in sorted(os.listdir(os.path.join(self.image_dir, name))):
                m = LFW_IMAGE.match(file)
                if m and m["name"] == name:
                    files.append(file)
                else:
                    self.report(os.path.relpath(os.path.join(self.image_dir, name, file), self.root),
                                f"skipped: expected {name}_<NNNN>.jpg in folder {name}/")
            total += len(files)
            if len(files) < self.min_images:
                continue
            for file in files:
                image = os.path.join(self.image_dir, name, file)
                yield FaceRecord(image=image, labels={}, identity=name, split="train",
                                 source=os.path.relpath(image, self.root))
        if not total:
            raise DataFormatError(
                f"LfwIdentityReader: no <Name>/<Name>_<NNNN>.jpg image under {self.image_dir!r}")
