"""``ExpressionModel``: a FaceModel whose card task is ``expression``; ``predict`` adds per-face ``scores``.

The scores are keyed like the expression API of the VGG course (``anger``, ``contempt``, ``disgust``,
``fear``, ``happiness``, ``neutral``, ``sadness``, ``surprise``). FER-2013 has no contempt class, so a model
trained on it gives ``contempt`` a score of exactly 0.0 (it cannot recognise it) and the other seven scores
are its class probabilities, summing to 1. Every runtime adds them for cards of task ``expression``
(``facezoo.inference.runtime``), so the exported-graph backends give them too.
"""
from __future__ import annotations

from facezoo.inference.face_model import FaceModel
from facezoo.inference.runtime import API_KEYS, CLASS_TO_KEY, api_scores  # noqa: F401  (re-exported)


class ExpressionModel(FaceModel):
    """``facezoo.load(..., backend="keras")`` returns it for cards of task ``expression``; ``predict`` adds
    ``scores``."""
