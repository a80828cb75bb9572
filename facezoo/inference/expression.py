"""``ExpressionModel``: a FaceModel whose card task is ``expression``, adding per-face ``scores``.

The scores are keyed like the expression API of the VGG course (``anger``, ``contempt``, ``disgust``,
``fear``, ``happiness``, ``neutral``, ``sadness``, ``surprise``). FER-2013 has no contempt class, so a model
trained on it gives ``contempt`` a score of exactly 0.0 (it cannot recognise it) and the other seven scores
are its class probabilities, summing to 1.
"""
from __future__ import annotations

from facezoo.inference.face_model import FaceModel

API_KEYS = ("anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
# Class names of the label spaces in facezoo.attributes -> the API's keys.
CLASS_TO_KEY = {"angry": "anger", "anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
                "happy": "happiness", "neutral": "neutral", "sad": "sadness", "sadness": "sadness",
                "surprise": "surprise"}


def api_scores(probabilities: dict) -> dict:
    """``{class: probability}`` of an expression head -> the eight API scores (absent classes score 0.0)."""
    scores = dict.fromkeys(API_KEYS, 0.0)
    for name, p in probabilities.items():
        scores[CLASS_TO_KEY[name]] += float(p)
    return scores


class ExpressionModel(FaceModel):
    """``facezoo.load`` returns it for cards of task ``expression``; ``predict`` adds ``scores``."""

    def _decode_row(self, outputs, row):
        attributes = super()._decode_row(outputs, row)
        expression = attributes.get("expression")
        if expression is not None:
            expression["scores"] = api_scores(expression["probabilities"])
        return attributes
