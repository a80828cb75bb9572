"""One table of data-set recipes: everything a recipe, a card and the evaluator need about a data set.

Adding a data set or a model is one ``DatasetRecipe`` entry here (reader, label space, heads, split
unit, score, licence, description, source, headline metric, preprocessing) plus a recipe command line;
``recipes/train_dmtl.py``, ``recipes/ship_dmtl.py``, ``facezoo evaluate`` and the cards read it.
"""
from __future__ import annotations

import dataclasses

from facezoo import attributes as A
from facezoo.data.face_union import FACE
from facezoo.data.face_union import SOURCES as FACE_SOURCES
from facezoo.data.splits import split_rule
from facezoo.models.dmtl import HeadSpec
from facezoo.models.face_trunk import FACEZOO_FACE
from facezoo.preprocessing import CELEBA_ALIGNED, FaceFraming


@dataclasses.dataclass(frozen=True)
class Score:
    """A named metric expression: ``sum(weight * summary[metric])``, higher is better.

    A metric the summary lacks (no validation image labels that head: a tiny copy of a data set of several
    sources) is left out; a summary with none of the metrics is an error.
    """

    terms: tuple  # ((metric, weight), ...)

    def __call__(self, summary: dict) -> float:
        present = [(metric, weight) for metric, weight in self.terms if metric in summary]
        if not present:
            raise KeyError(f"the summary has none of {[m for m, _ in self.terms]} (it has {sorted(summary)})")
        return float(sum(weight * summary[metric] for metric, weight in present))

    def __str__(self):
        return " + ".join(f"{w:g}*{m}" for m, w in self.terms).replace("+ -", "- ")


@dataclasses.dataclass(frozen=True)
class DatasetRecipe:
    """How one data set is read, split, attached to a DMTL model and described on a card.

    Args:
        name: reader name in ``facezoo.data.READERS``.
        label_space: its label space.
        heads: its DMTL heads (loss weights, tolerances).
        split_unit: what the split hashes (``"identity"``, ``"file"``), for the card's split rule.
        score: the validation score that chooses the best epoch.
        headline: the summary metric ``facezoo list`` shows.
        license: the data set's terms, inherited by weights trained on it.
        description: what a model trained on it predicts (card text).
        source: where the staged copy comes from.
        framing: the face framing of its images (``preprocessing.FaceFraming``; None: not measured).
        color: ``"rgb"`` or ``"grey"`` network input.
        official_split: keep the reader's official train/val/test splits instead of the hash rule.
        task: the card task of a model shipped from it (``facezoo.zoo.TASKS``).
        folder: its folder under the data root (default: ``name``; ``"."``: the data root itself, for data sets
            that read several sources).
        parts: for such a data set, the sources' folders (under its own) that its reader also reads alone: the
            evaluator's figures per source go on the card beside the overall ones.
    """

    name: str
    label_space: A.LabelSpace
    heads: tuple
    split_unit: str
    score: Score
    headline: str
    license: str
    description: str
    source: str
    framing: FaceFraming | None = None
    color: str = "rgb"
    official_split: bool = False
    task: str = "attributes"
    folder: str | None = None
    parts: tuple = ()

    def data_dir(self, data_root: str) -> str:
        """Where the data set lives under ``data_root`` by default."""
        import os
        return os.path.normpath(os.path.join(data_root, self.folder or self.name))

    def split_rule(self, val_percent: int) -> str:
        return split_rule(self.split_unit, val_percent, official=self.official_split)


# FER-2013 in its own 48x48 framing (expression_fer before); fer2013_face is the same data re-framed.
_FER2013 = DatasetRecipe(
    "fer2013", A.FER2013, (HeadSpec(A.FER2013["expression"]),),
    split_unit="Training: train, PublicTest: validation, PrivateTest: test", official_split=True,
    score=Score((("mean_accuracy", 1.0),)), headline="mean_accuracy",
    license=("FER-2013 (Goodfellow et al., ICML 2013 challenge, Kaggle): NON-COMMERCIAL RESEARCH USE ONLY; "
             "image copyright stays with the owners. These weights are derived from FER-2013 images and inherit "
             "that restriction. Do not use them commercially."),
    description=("DMTL expression classifier (shared ResNet-18 trunk, self-evaluation head): FER-2013's 7 "
                 "expressions from a grey face crop; answers also carry the expression API's eight scores "
                 "(anger, contempt, disgust, fear, happiness, neutral, sadness, surprise), contempt 0.0 "
                 "because FER-2013 has no such class."),
    source="fer2013/SOURCE.md (official Training and PublicTest folders, 48x48 grey)",
    color="grey", task="expression")


DATASETS: dict[str, DatasetRecipe] = {r.name: r for r in (
    DatasetRecipe(
        "celeba", A.CELEBA_40, tuple(HeadSpec(a) for a in A.CELEBA_40),
        split_unit="identity (identity_CelebA.txt)", score=Score((("mean_accuracy", 1.0),)),
        headline="mean_accuracy",
        license=("CelebA (Liu et al., ICCV 2015, MMLAB CUHK): NON-COMMERCIAL RESEARCH USE ONLY. The CelebA "
                 "agreement forbids commercial use; these weights are derived from CelebA images and inherit "
                 "that restriction. Do not use them commercially."),
        description=("DMTL (shared ResNet-18 trunk, holistic/local category branches, one head per attribute, "
                     "self-evaluation heads) predicting CelebA's 40 binary face attributes from an aligned face "
                     "crop."),
        source="celeba/SOURCE.md (8,063 aligned 89x109 images, 4,369 identities)",
        framing=CELEBA_ALIGNED),
    DatasetRecipe(
        "utkface", A.UTKFACE,
        (HeadSpec(A.UTKFACE["age"], weight=4.0, tolerance=5), HeadSpec(A.UTKFACE["gender"]),
         HeadSpec(A.UTKFACE["race"])),
        split_unit="file (UTKFace has no identity labels)",
        score=Score((("gender_accuracy", 0.5), ("race_accuracy", 0.5), ("age_mae", -0.01))),
        headline="age_mae",
        license=("UTKFace (Zhang, Song, Qi, CVPR 2017): NON-COMMERCIAL RESEARCH PURPOSES ONLY; image copyright "
                 "stays with the owners. These weights are derived from UTKFace images and inherit that "
                 "restriction. Do not use them commercially."),
        description=("DMTL (shared ResNet-18 trunk, holistic nominal + ordinal branches, self-evaluation heads): "
                     "apparent age (CORAL ordinal head over 0-100 years, decoded to the expected value), gender "
                     "and race (UTKFace's 5 groups) from a face crop."),
        source="utkface/SOURCE.md (11,000 aligned & cropped 200x200 images)"),
    _FER2013,
    dataclasses.replace(
        _FER2013, name="fer2013_face",
        description=("DMTL expression classifier on the face trunk (EfficientNet-Lite0, self-evaluation head): "
                     "FER-2013's 7 expressions from a 112x112 grey face that our detector aligned onto the "
                     "facezoo_face framing; answers also carry the expression API's eight scores (anger, contempt, "
                     "disgust, fear, happiness, neutral, sadness, surprise), contempt 0.0 because FER-2013 has no "
                     "such class."),
        source=("fer2013/SOURCE.md (official Training and PublicTest folders, 48x48 grey), re-framed by "
                "facezoo.data.face_union.Fer2013FaceReader"),
        framing=FACEZOO_FACE, folder="fer2013"),
    DatasetRecipe(
        "face", FACE,
        tuple(HeadSpec(a) for a in A.CELEBA_40) + (
            HeadSpec(A.UTKFACE["age"], weight=4.0, tolerance=5), HeadSpec(A.UTKFACE["gender"]),
            HeadSpec(A.UTKFACE["race"]), HeadSpec(A.FER2013["expression"])),
        split_unit=("each source's own rule: CelebA identity and UTKFace file by hash, FER-2013's official "
                    "Training/PublicTest, LFW by person (the people of View-2 folds 1-3 are validation)"),
        official_split=True,
        score=Score((("mean_accuracy", 1.0), ("gender_accuracy", 0.5), ("race_accuracy", 0.5),
                     ("expression_accuracy", 0.5), ("age_mae", -0.01))),
        headline="mean_accuracy",
        license=("CelebA (non-commercial research only), UTKFace (non-commercial research only), LFW (research; "
                 "image copyright stays with the owners) and FER-2013 (non-commercial research only). These "
                 "weights are derived from their images and inherit the strictest of those terms: do not use them "
                 "commercially."),
        description=("DMTL on one shared trunk with every head in one forward pass: CelebA's 40 attributes, "
                     "apparent age (CORAL over 0-100 years), gender, race (UTKFace's 5 groups) and FER-2013's 7 "
                     "expressions, from a 112x112 face that our detector aligned onto the facezoo_face framing. "
                     "Each source trains only the heads it labels (the others are masked)."),
        source=("celeba/, utkface/, lfw/ (with male_names.txt / female_names.txt) and fer2013/ under the data root, "
                "re-framed by facezoo.data.face_union"),
        framing=FACEZOO_FACE, folder=".", parts=FACE_SOURCES),
)}
