"""``evaluate_expression_transfer``: class matching through the API keys, shared vs all classes, given crops."""
from types import SimpleNamespace

import numpy as np
import pytest

from facezoo import attributes as A
from facezoo.evaluation.cross_dataset import evaluate_expression_transfer
from facezoo.inference.expression import api_scores


class _Model:
    """Answers FER-2013 classes from the crop: the class index is the crop's first pixel."""
    heads = [("fer2013", SimpleNamespace(attribute=A.FER2013["expression"]), "fer2013/expression")]

    def __init__(self):
        self.seen = []

    def _answer(self, k):
        probs = {c: float(i == k) for i, c in enumerate(A.FER_EXPRESSIONS)}
        return {"expression": {"label": A.FER_EXPRESSIONS[k], "scores": api_scores(probs)}}

    def describe_crops(self, crops):
        self.seen.append(crops.shape)
        return [self._answer(int(c[0, 0, 0])) for c in crops]

    def predict(self, files, batch_size, check_face):
        raise AssertionError("crops were given: predict must not run")


def test_crops_are_described_and_contempt_counts_only_in_all_classes():
    ck = list(A.CKPLUS_EXPRESSIONS)  # anger contempt disgust fear happy sadness surprise
    fer = list(A.FER_EXPRESSIONS)    # angry disgust fear happy sad surprise neutral
    truth = ["anger", "happy", "happy", "contempt", "surprise"]
    answer = ["angry", "happy", "sad", "neutral", "surprise"]
    records = [SimpleNamespace(image=f"{i}.png", labels={"expression": ck.index(t)}) for i, t in enumerate(truth)]
    crops = np.zeros((5, 4, 4, 3), np.uint8)
    crops[:, 0, 0, 0] = [fer.index(a) for a in answer]
    model = _Model()
    report = evaluate_expression_transfer(model, records, A.CKPLUS, batch_size=2, crops=crops)
    assert model.seen == [(2, 4, 4, 3), (2, 4, 4, 3), (1, 4, 4, 3)]
    assert "contempt" not in report["shared_classes"] and report["n_shared"] == 4
    assert report["accuracy_shared"] == pytest.approx(3 / 4) and report["accuracy_all"] == pytest.approx(3 / 5)
    assert report["per_class"]["happiness"] == pytest.approx(0.5) and report["per_class"]["contempt"] == 0.0
    with pytest.raises(ValueError, match="4 crops for 5 records"):
        evaluate_expression_transfer(model, records, A.CKPLUS, crops=crops[:4])
