"""Finding, verifying and loading shipped models; ``load`` dispatches on the card's task."""
from __future__ import annotations

import difflib
import fnmatch
import importlib
import os

from facezoo.errors import ChecksumError, ModelFileError, UsageError
from facezoo.files import sha256_of
from facezoo.zoo.card import CARD_FILE, ModelCard

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORTED_DIR = os.path.join(PACKAGE_DIR, "exported")

# Card task -> "module:callable" building the runtime object from (checksum-verified weights path, card).
TASKS: dict[str, str] = {
    "attributes": "facezoo.inference.face_model:FaceModel.from_file",
    "detection": "facezoo.face.detect:RetinaFaceDetector.from_file",
    "expression": "facezoo.inference.expression:ExpressionModel.from_file",
    "verification": "facezoo.inference.embedding:FaceEmbedder.from_file",
    "generation": "facezoo.inference.generation:FaceGenerator.from_file",
    "super_resolution": "facezoo.inference.generation:FaceUpscaler.from_file",
}

# What ``analyze`` describes faces with by default: one network, every head (40 CelebA attributes, age, gender, race,
# expression) in one forward pass; on each source's validation split it beats the single-source dmtl_celeba /
# dmtl_utkface / expression_fer. Here rather than in facezoo.face.analyze so the CLI reads it without importing that.
ANALYZE_MODELS = ("dmtl_face",)

# Tasks whose Keras runtime runs a BatchNorm-folded copy of the network unless ``fold_batchnorm=False``.
FOLDING_TASKS = ("attributes", "expression", "verification")


def register_task(task: str, loader: str):
    """Registers the runtime ``"module:callable"`` that ``load`` uses for cards of ``task``."""
    TASKS[task] = loader


def _exported_dir() -> str:
    if os.path.isfile(EXPORTED_DIR):
        # A checkout made without symbolic links (the Windows default) turns the link into a text file.
        raise ModelFileError(f"{EXPORTED_DIR} is a file, not the folder of shipped models: this checkout was "
                             "made without symbolic links (git config core.symlinks true, then check out again), "
                             "or install facezoo with pip")
    return EXPORTED_DIR


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Names of shipped models matching a glob ``pattern`` (``"dmtl_*"``), of one card ``task`` if given."""
    root = _exported_dir()
    if not os.path.isdir(root):
        return []
    names = [n for n in sorted(os.listdir(root)) if os.path.isfile(os.path.join(root, n, CARD_FILE))]
    names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    if task is not None:
        names = [n for n in names if ModelCard.from_json(os.path.join(root, n, CARD_FILE)).task == task]
    return names


def model_dir(name: str) -> str:
    """Folder of a shipped model; an unknown name gets an error listing close matches."""
    names = list_models()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UsageError(f"Unknown model {name!r}.{hint} Available: {', '.join(names) or 'none'}")
    return os.path.join(_exported_dir(), name)


def model_card(name: str) -> ModelCard:
    """The card of a shipped model."""
    return ModelCard.from_json(os.path.join(model_dir(name), CARD_FILE))


def verified_path(directory: str, card: ModelCard) -> str:
    """Path of the weights file in ``directory`` after checking its size and sha256 against ``card``."""
    path = os.path.join(directory, card.weights_file)
    if not os.path.isfile(path):
        raise ModelFileError(f"{card.name}: weights file {path} is missing; reinstall facezoo")
    size = os.path.getsize(path)
    if card.size_bytes and size != card.size_bytes:
        raise ChecksumError(f"{card.name}: {path} has {size} bytes, the card says {card.size_bytes} "
                            "(truncated or replaced file); reinstall facezoo")
    digest = sha256_of(path)
    if digest != card.sha256:
        raise ChecksumError(f"{card.name}: sha256 of {path} is {digest[:16]}..., the card says "
                            f"{card.sha256[:16]}... (tampered or corrupt file); reinstall facezoo")
    return path


def load_verified_keras(directory: str, card: ModelCard):
    """The card's ``.keras`` weights, checksum-verified and loaded with ``safe_mode=True``.

    Raises:
        ModelFileError: the file is missing, fails its checksum, or passes it but cannot be read.
    """
    from facezoo.errors import require_tensorflow
    require_tensorflow()
    from facezoo.models.weights import load_model_file
    return load_model_file(verified_path(directory, card), card.name)


def _runtime(task: str, name: str):
    from facezoo.errors import require_tensorflow
    require_tensorflow()  # every runtime so far runs on TensorFlow: say which extra installs it
    if task not in TASKS:
        raise ModelFileError(f"{name}: card task {task!r} has no runtime in this facezoo "
                             f"(known: {', '.join(sorted(TASKS))}); upgrade facezoo")
    module, _, attr = TASKS[task].partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load(name: str, *, directory: str | None = None, backend: str | None = None, precision: str | None = None,
         **options):
    """Loads a shipped model by name, verifying its checksum; returns the runtime of its card's task.

    Args:
        name: a name from ``list_models()`` (ignored for lookup when ``directory`` is given).
        directory: load from this folder (weights + ``card.json``) instead of the package.
        backend: ``"keras"``, ``"onnxruntime"``, ``"litert"``, ``"openvino"`` or None/``"auto"`` (the fastest
            installed; ``facezoo.backends``). Cards of other tasks than attributes, expression and detection run
            on Keras.
        precision: ``"fp32"`` (default), ``"bf16"``, ``"int8"``, ``"float16"`` or ``"auto"`` (the CPU decides).
        **options: for exported backends: ``calibration`` (images to build an int8 graph that is not shipped),
            ``threads``. For the keras backend of attribute, expression and verification models:
            ``fold_batchnorm`` (default True: ``predict`` / ``embed`` run a copy with every BatchNormalization
            folded into its convolution, made once at load; False runs ``.model`` as shipped). For those models
            on every backend: ``flip_test`` (default: the card's ``architecture["flip_test"]``, which its
            metrics were measured with; True averages every output over the face and its mirror image, twice
            the network work; exported graphs get the mirror images in the same call).

    Returns:
        On the keras backend, for ``task == "attributes"`` a ``facezoo.inference.face_model.FaceModel``, for
        ``"detection"`` a ``facezoo.face.detect.RetinaFaceDetector``; on the others a
        ``facezoo.backends.model.ExportedModel`` (or ``ExportedRetinaFaceDetector``) with the same ``predict``
        (``detect``). For ``"verification"`` a ``facezoo.inference.embedding.FaceEmbedder``; for
        ``"generation"`` a ``facezoo.inference.generation.FaceGenerator`` (``.sample``), for
        ``"super_resolution"`` a ``FaceUpscaler`` (``.upscale``).
    """
    directory = directory or model_dir(name)
    card = ModelCard.from_json(os.path.join(directory, CARD_FILE))
    from facezoo.backends import load_exported, resolve
    backend, precision = resolve(card.task, backend, precision, card=card, directory=directory)
    if backend != "keras":
        flip = options.pop("flip_test", None) if card.task in FOLDING_TASKS else None
        unknown = sorted(set(options) - {"calibration", "threads"})
        if unknown:
            raise UsageError(f"{card.name} on {backend} takes no {', '.join(unknown)} (exported backends take "
                             "calibration and threads; flip_test: attribute, expression and verification models; "
                             "fold_batchnorm: the keras backend)")
        runtime = load_exported(directory, card, backend, precision, **options)
        if flip is not None:  # graphs are built without it: the mirror images join the batch (ExportedModel)
            runtime.flip_test = bool(flip)
        return runtime
    keras_options = {}
    for option in ("fold_batchnorm", "flip_test"):
        if option in options and card.task in FOLDING_TASKS:
            keras_options[option] = bool(options.pop(option))
    if options:
        raise UsageError(f"the keras backend takes no {', '.join(sorted(options))} for a {card.task} model"
                         + (" (fold_batchnorm, flip_test: attribute, expression and verification models)"
                            if {"fold_batchnorm", "flip_test"} & set(options) else ""))
    runtime = _runtime(card.task, card.name)
    return runtime(verified_path(directory, card), card, **keras_options)


def sample_image() -> str:
    """Path of the bundled public-domain face crop (NASA astronaut portrait in CelebA's framing; sample/README.md)."""
    return os.path.join(PACKAGE_DIR, "sample", "astronaut.jpg")


def sample_photo() -> str:
    """Path of the bundled public-domain photo: the whole NASA astronaut portrait (sample/README.md)."""
    return os.path.join(PACKAGE_DIR, "sample", "astronaut_full.jpg")
