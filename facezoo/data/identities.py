"""Identity-labelled face images for verification training, with every evaluation person kept out.

``lfw_training_people(root, exclude_folds)``: LFW images of people with at least two images, minus everyone who
appears in any pair of the excluded View-2 folds (checked again before returning). ``celeba_identities(root)``:
CelebA's aligned images with their ``identity_CelebA.txt`` person numbers. Records are ``(path, identity)`` with
identities prefixed by the data set (``lfw:Name``, ``celeba:2880``), so the two never collide.
"""
from __future__ import annotations

import os

from facezoo.errors import DataFormatError, MissingDataError


def lfw_evaluation_people(root: str, folds) -> set:
    """Every person named in a pair of ``folds`` of ``root/pairs.txt``."""
    from facezoo.data.lfw_pairs import read_pairs
    pairs_txt = os.path.join(root, "pairs.txt")
    if not os.path.isfile(pairs_txt):
        raise MissingDataError(f"{root}: no pairs.txt, so the evaluation people cannot be excluded")
    chosen = set(folds)
    return {os.path.basename(os.path.dirname(p)) for pair in read_pairs(pairs_txt, root) if pair.fold in chosen
            for p in (pair.path_a, pair.path_b)}


def lfw_training_people(root: str, exclude_folds, min_images: int = 2) -> list[tuple[str, str]]:
    """``(path, "lfw:Name")`` of LFW people with ``min_images``+ images, none of them in ``exclude_folds``."""
    from facezoo.data.lfw_pairs import LfwIdentityReader
    excluded = lfw_evaluation_people(root, exclude_folds)
    records = [(r.image, r.identity) for r in LfwIdentityReader(root, min_images=min_images).records()
               if r.identity not in excluded]
    leaked = {name for _, name in records} & excluded
    assert not leaked, f"evaluation people left in the training set: {sorted(leaked)[:5]}"
    return [(path, f"lfw:{name}") for path, name in records]


def celeba_identities(root: str, min_images: int = 2) -> list[tuple[str, str]]:
    """``(path, "celeba:N")`` of CelebA images present under ``img_align_celeba/``, people with ``min_images``+."""
    table = os.path.join(root, "identity_CelebA.txt")
    if not os.path.isfile(table):
        raise MissingDataError(f"{root}: identity_CelebA.txt is missing")
    records = []
    with open(table, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit():
                raise DataFormatError(f"{table}:{number}: expected '<image> <identity number>', got {line.strip()!r}")
            path = os.path.join(root, "img_align_celeba", fields[0])
            if os.path.isfile(path):
                records.append((path, f"celeba:{fields[1]}"))
    counts: dict[str, int] = {}
    for _, identity in records:
        counts[identity] = counts.get(identity, 0) + 1
    return [(p, i) for p, i in records if counts[i] >= min_images]
