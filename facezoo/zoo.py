"""The model registry: ``list_models()``, ``load(name)``, model cards, checksums.

Every shipped model lives in ``exported/<name>/`` (installed with the package) as ``model.keras``
plus ``card.json``. The card carries what a user needs to use the weights correctly —
input size, preprocessing, label space, decision thresholds, abstain band — and what they need
to trust them: training data and split, licence terms, metrics measured by ``facezoo evaluate``
(with the command), and the file's sha256, verified on every load.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import json
import os

EXPORTED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exported")
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"


from facezoo.errors import ChecksumError  # noqa: E402,F401


@dataclasses.dataclass
class ModelCard:
    """What travels with a shipped model (see the module docstring).

    ``metrics`` maps a split name to the summary ``facezoo evaluate`` wrote; ``evaluate_command``
    reproduces them; ``headline`` names the metric ``facezoo list`` shows.
    """

    name: str
    task: str
    description: str
    architecture: dict
    input_size: list
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

    @classmethod
    def from_json(cls, path) -> "ModelCard":
        with open(path) as f:
            data = json.load(f)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self, path):
        tmp = os.fspath(path) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dataclasses.asdict(self), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)

    def headline_value(self):
        """``(metric name, value)`` of the headline metric on the card's first split, or None."""
        if not self.headline or not self.metrics:
            return None
        split = next(iter(self.metrics.values()))
        for ds_summary in split.values() if isinstance(split, dict) else []:
            if isinstance(ds_summary, dict) and self.headline in ds_summary:
                return self.headline, ds_summary[self.headline]
        return None


def sha256_of(path, chunk=1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def list_models(pattern: str = "*") -> list[str]:
    """Names of shipped models matching a glob ``pattern`` (``"dmtl_*"``)."""
    if not os.path.isdir(EXPORTED_DIR):
        return []
    names = [n for n in sorted(os.listdir(EXPORTED_DIR))
             if os.path.isfile(os.path.join(EXPORTED_DIR, n, CARD_FILE))]
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def model_dir(name: str) -> str:
    """Folder of a shipped model; an unknown name gets an error listing close matches."""
    if name not in list_models():
        close = difflib.get_close_matches(name, list_models(), n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} Available: {', '.join(list_models()) or 'none'}")
    return os.path.join(EXPORTED_DIR, name)


def model_card(name: str) -> ModelCard:
    """The card of a shipped model."""
    return ModelCard.from_json(os.path.join(model_dir(name), CARD_FILE))


def verified_path(directory: str, card: ModelCard) -> str:
    """Path of ``model.keras`` in ``directory`` after checking its size and sha256 against ``card``."""
    path = os.path.join(directory, MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{card.name}: weights file {path} is missing")
    size = os.path.getsize(path)
    if card.size_bytes and size != card.size_bytes:
        raise ChecksumError(f"{card.name}: {path} has {size} bytes, the card says {card.size_bytes} "
                            "(truncated or replaced file); reinstall facezoo")
    digest = sha256_of(path)
    if digest != card.sha256:
        raise ChecksumError(f"{card.name}: sha256 of {path} is {digest[:16]}..., the card says "
                            f"{card.sha256[:16]}... (tampered or corrupt file); reinstall facezoo")
    return path


def load_keras(path):
    """Loads a facezoo ``.keras`` file with ``safe_mode=True`` (registers facezoo's layers first)."""
    import keras

    import facezoo.models  # noqa: F401  (registers Dmtl, OrdinalLogits, StopGradient)
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def load(name: str, *, directory: str | None = None):
    """Loads a shipped model by name, verifying its checksum; returns a ``facezoo.predict.FaceModel``.

    Args:
        name: a name from ``list_models()`` (ignored for lookup when ``directory`` is given).
        directory: load from this folder (``model.keras`` + ``card.json``) instead of the package.
    """
    from facezoo.predict import FaceModel
    directory = directory or model_dir(name)
    card = ModelCard.from_json(os.path.join(directory, CARD_FILE))
    return FaceModel(load_keras(verified_path(directory, card)), card)


def backbone_weights_path(name: str, model_name: str) -> str:
    """Path of registered backbone weights ``name`` (none are shipped yet)."""
    raise ValueError(f"{model_name}: weights={name!r} is neither an existing file nor a registered "
                     f"pretrained name; no pretrained backbone weights are registered yet (use "
                     f"weights=None or a file path). Shipped whole models: {list_models() or 'none'}")


def package_model(keras_path: str, out_dir: str, card: ModelCard, extra_files=()) -> ModelCard:
    """Writes a shippable model folder: ``model.keras``, ``card.json`` (with sha256 and size) and extras.

    The model is re-saved from ``keras_path`` (so the file holds exactly what ``load`` will read)
    and loaded back once with ``safe_mode=True`` to prove it loads.
    """
    import shutil
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, MODEL_FILE)
    tmp = os.path.join(out_dir, "model.tmp.keras")
    load_keras(keras_path).save(tmp)
    load_keras(tmp)
    os.replace(tmp, target)
    for f in extra_files:
        shutil.copyfile(f, os.path.join(out_dir, os.path.basename(f)))
    card.sha256 = sha256_of(target)
    card.size_bytes = os.path.getsize(target)
    card.files = {MODEL_FILE: card.sha256, **{os.path.basename(f): sha256_of(f) for f in extra_files}}
    card.to_json(os.path.join(out_dir, CARD_FILE))
    return card


def sample_image() -> str:
    """Path of the bundled public-domain face photo (NASA astronaut portrait, see sample/README.md)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample", "astronaut.jpg")
