"""The model registry: ``list_models()``, ``load(name)``, model cards, checksums, packaging.

Every shipped model lives in ``exported/<name>/`` (installed with the package) as its weights plus
``card.json``. The card carries what a user needs to use the weights correctly — the task, the
preprocessing spec (input size, colour, scaling, face framing), label space, decision thresholds,
abstain band — and what they need to trust them: training data and split, licence terms, metrics
measured by ``facezoo evaluate`` (with the command), and the sha256 of every file, verified on load.
``load`` returns the runtime class registered for the card's ``task``.
"""
from facezoo.zoo.card import CARD_FILE, FORMAT_VERSION, MODEL_FILE, ModelCard  # noqa: F401
from facezoo.zoo.registry import (  # noqa: F401
    EXPORTED_DIR, TASKS, list_models, load, model_card, model_dir, register_task, sample_image, sample_photo,
    verified_path)
