"""``ModelCard``: what travels with a shipped model (see ``facezoo.zoo``)."""
from __future__ import annotations

import dataclasses
import json
import os

from facezoo.errors import ModelFileError
from facezoo.files import atomic_write
from facezoo.preprocessing import PreprocessSpec

MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
FORMAT_VERSION = 2


@dataclasses.dataclass
class ModelCard:
    """A shipped model's card.

    ``task`` names the runtime class ``facezoo.load`` returns (``attributes``, later ``detection``,
    ``embedding``, ``expression``, ``generator``); ``preprocessing`` is a ``PreprocessSpec`` as a dict;
    ``metrics`` maps a split name to the summary ``facezoo evaluate`` wrote and ``evaluate_command``
    reproduces them; ``headline`` names the metric ``facezoo list`` shows; ``files`` maps every file of the
    model folder but the card to its sha256; ``sha256``/``size_bytes`` are those of the weights file;
    ``quantization`` holds what ``benchmarks/quantization.py --write-cards`` measured for each export format;
    ``graphs`` lists the exported graphs shipped beside the weights for the non-Keras backends
    (``facezoo.backends``): ``{"onnx/fp32": {"file", "sha256", "source_sha256", "command", ...}}``, where
    ``source_sha256`` is the weights file the graph was built from (a graph of older weights is not used).
    """

    name: str
    task: str
    description: str
    architecture: dict
    preprocessing: dict
    label_spaces: list
    training_data: dict
    split: str
    license: str
    metrics: dict = dataclasses.field(default_factory=dict)
    evaluate_command: str = ""
    train_command: str = ""
    headline: str = ""
    thresholds: dict = dataclasses.field(default_factory=dict)
    abstain_below: float = 0.5
    sha256: str = ""
    size_bytes: int = 0
    files: dict = dataclasses.field(default_factory=dict)
    notes: str = ""
    quantization: dict = dataclasses.field(default_factory=dict)
    graphs: dict = dataclasses.field(default_factory=dict)
    weights_file: str = MODEL_FILE
    format_version: int = FORMAT_VERSION

    @property
    def spec(self) -> PreprocessSpec:
        """The preprocessing spec the model was trained with."""
        return PreprocessSpec.from_dict(self.preprocessing)

    @property
    def input_size(self) -> tuple:
        return self.spec.input_size

    @classmethod
    def from_json(cls, path) -> "ModelCard":
        """Reads a card; any problem is a ``ModelFileError`` naming the file."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ModelFileError(f"{path}: model card is missing") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFileError(f"{path}: model card is not readable JSON ({e}); reinstall facezoo") from None
        if not isinstance(data, dict):
            raise ModelFileError(f"{path}: model card must be a JSON object, got {type(data).__name__}")
        version = data.get("format_version", 1)
        if version != FORMAT_VERSION:
            raise ModelFileError(f"{path}: card format version {version}, this facezoo reads version "
                                 f"{FORMAT_VERSION}; install the facezoo release the model was made for")
        known = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ModelFileError(f"{path}: model card lacks {', '.join(missing)}")
        card = cls(**{k: v for k, v in data.items() if k in known})
        try:
            card.spec  # noqa: B018  (validates the preprocessing spec)
        except (TypeError, ValueError, KeyError) as e:
            raise ModelFileError(f"{path}: bad preprocessing spec ({e})") from None
        return card

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path):
        atomic_write(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def headline_value(self):
        """``(metric name, value)`` of the headline metric on the card's first split, or None."""
        if not self.headline or not self.metrics:
            return None
        split = next(iter(self.metrics.values()))
        for ds_summary in split.values() if isinstance(split, dict) else []:
            if isinstance(ds_summary, dict) and self.headline in ds_summary:
                return self.headline, ds_summary[self.headline]
        return None
