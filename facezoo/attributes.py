"""Label spaces: every attribute facezoo knows, its kind and its classes, in one place.

Readers turn files into labels with these definitions, heads size themselves from them, losses and
metrics pick their form from ``Attribute.kind``, and decoders name their outputs with them.

Kinds:
    ``binary``  one sigmoid logit (CelebA's 40 attributes).
    ``nominal`` one softmax over unordered classes (gender, race, expression).
    ``ordinal`` K ordered classes with rank-consistent logits (CORAL: K-1 biases on one shared
                weight vector); ``values`` gives the number each class stands for (age in years),
                so the head also decodes to an expected value.
Scopes (thesis §3.3, Han et al. 2017): ``holistic`` attributes describe the whole face (age,
gender, attractiveness); ``local`` ones a region (eyeglasses, mouth open, hair colour).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

KINDS = ("binary", "nominal", "ordinal")
SCOPES = ("holistic", "local")


@dataclasses.dataclass(frozen=True)
class Attribute:
    """One predicted quantity.

    Args:
        name: identifier, unique within its label space (also the model output name).
        kind: one of ``KINDS``.
        scope: one of ``SCOPES``.
        classes: class names for nominal/ordinal attributes (``("negative", "positive")`` for binary).
        values: for ordinal attributes, the value each class stands for (e.g. years); decoding
            reports the probability-weighted mean of these.
        description: one line for model cards and ``--help``.
    """

    name: str
    kind: str
    scope: str
    classes: tuple[str, ...] = ("no", "yes")
    values: tuple[float, ...] | None = None
    description: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Attribute {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"Attribute {self.name!r}: scope must be one of {SCOPES}, got {self.scope!r}")
        if len(self.classes) < 2:
            raise ValueError(f"Attribute {self.name!r}: needs at least 2 classes, got {self.classes}")
        if self.kind == "binary" and len(self.classes) != 2:
            raise ValueError(f"Attribute {self.name!r}: a binary attribute has exactly 2 classes")
        if self.values is not None and len(self.values) != len(self.classes):
            raise ValueError(
                f"Attribute {self.name!r}: {len(self.values)} values for {len(self.classes)} classes")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def group(self) -> str:
        """The DMTL category branch: ``holistic_nominal``, ``local_ordinal``, ... (binary counts as nominal)."""
        return f"{self.scope}_{'ordinal' if self.kind == 'ordinal' else 'nominal'}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["classes"] = list(self.classes)
        d["values"] = None if self.values is None else list(self.values)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Attribute":
        d = dict(d)
        d["classes"] = tuple(d["classes"])
        if d.get("values") is not None:
            d["values"] = tuple(float(v) for v in d["values"])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class LabelSpace:
    """The attributes of one data set, in the order its label files use."""

    name: str
    attributes: tuple[Attribute, ...]

    def __post_init__(self):
        names = [a.name for a in self.attributes]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"LabelSpace {self.name!r}: duplicate attribute names {sorted(dup)}")

    def __iter__(self):
        return iter(self.attributes)

    def __len__(self):
        return len(self.attributes)

    def __getitem__(self, name: str) -> Attribute:
        for a in self.attributes:
            if a.name == name:
                return a
        raise KeyError(f"{name!r} is not in label space {self.name!r}; it has {self.names}")

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def to_dict(self) -> dict:
        return {"name": self.name, "attributes": [a.to_dict() for a in self.attributes]}

    @classmethod
    def from_dict(cls, d: dict) -> "LabelSpace":
        return cls(d["name"], tuple(Attribute.from_dict(a) for a in d["attributes"]))


def _binary(names: Sequence[str], holistic: set[str], space: str) -> LabelSpace:
    return LabelSpace(space, tuple(
        Attribute(n, "binary", "holistic" if n in holistic else "local") for n in names))


# CelebA's 40 attributes in the official column order of list_attr_celeba.txt.
CELEBA_NAMES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
# Attributes of the whole face (Han et al. 2017 group CelebA this way); the rest belong to a region.
CELEBA_HOLISTIC = {"Attractive", "Blurry", "Chubby", "Heavy_Makeup", "Male", "Oval_Face",
                   "Pale_Skin", "Young"}
CELEBA_40 = _binary(CELEBA_NAMES, CELEBA_HOLISTIC, "celeba")
# LFWA is annotated with CelebA's 40 attributes (Liu et al. 2015).
LFWA_40 = LabelSpace("lfwa", CELEBA_40.attributes)

MAX_AGE = 100  # ages above are clipped: ordinal ranks 0..100 years
AGE_YEARS = Attribute(
    "age", "ordinal", "holistic", classes=tuple(str(i) for i in range(MAX_AGE + 1)),
    values=tuple(float(i) for i in range(MAX_AGE + 1)), description="apparent age in years (0-100)")
GENDER = Attribute("gender", "nominal", "holistic", classes=("male", "female"))
UTKFACE_RACES = ("white", "black", "asian", "indian", "others")
UTKFACE = LabelSpace("utkface", (
    AGE_YEARS, GENDER, Attribute("race", "nominal", "holistic", classes=UTKFACE_RACES)))

# Adience's 8 age groups (Eidinger et al. 2014); values are the group mid-points in years.
ADIENCE_AGE_GROUPS = ((0, 2), (4, 6), (8, 12), (15, 20), (25, 32), (38, 43), (48, 53), (60, 100))
ADIENCE = LabelSpace("adience", (
    Attribute("age_group", "ordinal", "holistic",
              classes=tuple(f"({a}, {b})" for a, b in ADIENCE_AGE_GROUPS),
              values=tuple((a + b) / 2 for a, b in ADIENCE_AGE_GROUPS)),
    GENDER,
))

# FER-2013 in the CSV's emotion index order.
FER_EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013 = LabelSpace("fer2013", (Attribute("expression", "nominal", "holistic", classes=FER_EXPRESSIONS),))
CKPLUS_EXPRESSIONS = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")
CKPLUS = LabelSpace("ckplus", (Attribute("expression", "nominal", "holistic", classes=CKPLUS_EXPRESSIONS),))

# Faces of the World (ChaLearn LAP 2016): accessories are local, gender and smile holistic.
FOTW_ACCESSORIES = ("hat", "headband", "glasses", "earrings", "necklace", "tie", "scarf")
FOTW = LabelSpace("fotw", tuple(
    Attribute(n, "binary", "local") for n in FOTW_ACCESSORIES
) + (GENDER, Attribute("smile", "binary", "holistic")))

MORPH_RACES = ("black", "white", "hispanic", "asian", "indian", "other")
MORPH2 = LabelSpace("morph2", (
    AGE_YEARS, GENDER, Attribute("race", "nominal", "holistic", classes=MORPH_RACES)))

# The generic ``id,label`` CSV layout (facezoo.data.generic_csv) as used for gender.
GENDER_CSV = LabelSpace("gender_csv", (GENDER,))

LABEL_SPACES = {s.name: s for s in (CELEBA_40, LFWA_40, UTKFACE, ADIENCE, FER2013, CKPLUS, FOTW, MORPH2,
                                    GENDER_CSV)}


def get_label_space(name: str) -> LabelSpace:
    """Returns a registered label space by name (``celeba``, ``utkface``, ...)."""
    try:
        return LABEL_SPACES[name]
    except KeyError:
        raise ValueError(f"Unknown label space {name!r}; known: {sorted(LABEL_SPACES)}") from None


def adience_age_group(text: str) -> int | None:
    """Maps an Adience age string to its group index, or None when it fits no group.

    Adience fold files write ranges like ``(25, 32)``, a few off-grid ranges like ``(27, 32)``
    and single numbers like ``35``. A range maps to the group that contains its mid-point; a
    number to the group that contains it; anything else (``None``, empty, gaps between groups
    such as 3 or 13) to None, which readers report.
    """
    text = text.strip()
    if not text or text == "None":
        return None
    try:
        if text.startswith("("):
            lo, hi = (float(v) for v in text.strip("()").split(","))
            age = (lo + hi) / 2
        else:
            age = float(text)
    except ValueError:
        return None
    for i, (lo, hi) in enumerate(ADIENCE_AGE_GROUPS):
        if lo <= age <= hi:
            return i
    return None


# Facial action units (FACS, Ekman & Friesen 1978) as binary occurrence labels named ``AU<n>``.
AU_NAMES = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    12: "lip corner puller", 14: "dimpler", 15: "lip corner depressor", 17: "chin raiser",
    20: "lip stretcher", 23: "lip tightener", 24: "lip pressor", 25: "lips part", 26: "jaw drop",
}
# The 12 AUs BP4D-Spontaneous results are reported on (FERA 2015's 11 plus AU24; EAC-Net, JAA-Net), and
# the 12 AUs DISFA codes (papers usually report 8 of them: 1, 2, 4, 6, 9, 12, 25, 26).
BP4D_AUS = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def au_label_space(name: str, aus) -> LabelSpace:
    """A label space of binary ``AU<n>`` occurrence attributes (all local: each AU is a face region)."""
    unknown = [a for a in aus if a not in AU_NAMES]
    if unknown:
        raise ValueError(f"label space {name!r}: unknown action unit(s) {unknown}; known: {sorted(AU_NAMES)}")
    return LabelSpace(name, tuple(Attribute(f"AU{a}", "binary", "local", description=f"AU{a} {AU_NAMES[a]}")
                                  for a in aus))


BP4D = au_label_space("bp4d", BP4D_AUS)
DISFA = au_label_space("disfa", DISFA_AUS)
LABEL_SPACES.update({BP4D.name: BP4D, DISFA.name: DISFA})


def au_intensity_label_space(name: str, aus, levels: int = 6) -> LabelSpace:
    """Ordinal ``AU<n>`` intensity attributes with ``levels`` classes (FACS 0 and A-E as 0-5 by default)."""
    binary = au_label_space(name, aus)
    return LabelSpace(name, tuple(Attribute(a.name, "ordinal", "local", classes=tuple(str(i) for i in range(levels)),
                                            values=tuple(float(i) for i in range(levels)),
                                            description=f"{a.description} intensity 0-{levels - 1}")
                                  for a in binary))


DISFA_INTENSITY = au_intensity_label_space("disfa_intensity", DISFA_AUS)
LABEL_SPACES[DISFA_INTENSITY.name] = DISFA_INTENSITY
