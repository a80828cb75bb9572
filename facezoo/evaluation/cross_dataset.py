"""An expression model evaluated on another data set's expression labels (e.g. FER-2013 -> CK+).

Class names are matched through the expression API's keys (``facezoo.inference.expression``), so FER-2013's
``happy`` meets CK+'s ``happy`` and ``angry`` meets ``anger``. Accuracy is reported on the classes both data
sets share and on all of the target's classes (a class the model does not know, such as CK+'s contempt for a
FER-2013 model, then always counts as wrong).
"""
from __future__ import annotations

import numpy as np

from facezoo.inference.expression import CLASS_TO_KEY


def evaluate_expression_transfer(model, records, label_space, batch_size: int = 64, crops=None) -> dict:
    """Accuracy of ``model`` (any model with an ``expression`` head) on ``records`` labelled in ``label_space``.

    ``crops``: uint8 ``(N, H, W, 3)`` faces of ``records`` already warped onto the model's framing (e.g. by
    ``facezoo.data.face_crops.aligned_crops``); None runs ``predict`` on the record images as they are.

    Returns:
        ``{"n", "shared_classes", "accuracy_shared", "n_shared", "accuracy_all", "per_class", "confusion"}``.
    """
    attribute = label_space["expression"]
    target = [CLASS_TO_KEY[c] for c in attribute.classes]
    predicted = []
    files = [r.image for r in records]
    if crops is not None and len(crops) != len(files):
        raise ValueError(f"{len(crops)} crops for {len(files)} records")
    for start in range(0, len(files), batch_size):
        if crops is None:
            described = [r["attributes"] for r in model.predict(files[start:start + batch_size],
                                                                batch_size=batch_size, check_face=False)]
        else:
            described = model.describe_crops(np.asarray(crops[start:start + batch_size]))
        for attributes in described:
            scores = attributes["expression"]["scores"]
            known = {k: v for k, v in scores.items() if k in target}
            predicted.append(max(known, key=known.get) if known else "")
    truth = [target[r.labels["expression"]] for r in records]
    model_classes = {CLASS_TO_KEY[c] for _ds, spec, _o in model.heads if spec.attribute.name == "expression"
                     for c in spec.attribute.classes}
    shared = [c for c in target if c in model_classes]
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    in_shared = np.isin(truth, shared)
    per_class = {c: float(np.mean(predicted[truth == c] == c)) for c in target if np.any(truth == c)}
    confusion = {c: {p: int(np.sum((truth == c) & (predicted == p))) for p in target} for c in target}
    return {"n": int(len(truth)), "shared_classes": shared, "n_shared": int(in_shared.sum()),
            "accuracy_shared": float(np.mean(predicted[in_shared] == truth[in_shared])),
            "accuracy_all": float(np.mean(predicted == truth)), "per_class": per_class, "confusion": confusion}
