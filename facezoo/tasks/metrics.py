"""Metrics for every head kind, computed in numpy over a whole evaluation set.

One implementation serves the trainer's validation, ``facezoo evaluate`` and the model cards.
"""
from __future__ import annotations

import numpy as np

from facezoo.attributes import Attribute
from facezoo.models.heads import decode_head


def confusion_matrix(y_true, y_pred, num_classes):
    """(K, K) counts; rows are true classes, columns predictions."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def balanced_accuracy(cm):
    """Mean per-class recall over classes that occur."""
    support = cm.sum(1)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(np.diag(cm)[present] / support[present]))


def macro_f1(cm):
    """Unweighted mean F1 over classes that occur (binary: F1 of the positive class)."""
    tp = np.diag(cm).astype(float)
    prec = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    rec = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros_like(tp), where=(prec + rec) > 0)
    if cm.shape[0] == 2:
        return float(f1[1])
    return float(np.mean(f1[cm.sum(1) > 0]))


def head_metrics(attribute: Attribute, logits, labels, mask=None, tolerance: int = 0, confidence=None,
                 abstain_below: float = 0.5) -> dict:
    """All metrics of one head over labelled examples.

    Args:
        attribute: the head's attribute.
        logits: (N, units) head outputs.
        labels: (N,) labels (class indices; 0/1 for binary).
        mask: optional (N,) 1 where a label is present.
        tolerance: classes of slack for ``confidence_accuracy`` (as in training).
        confidence: optional (N,) self-evaluation probabilities; adds coverage and selective accuracy.
        abstain_below: confidence under which the head abstains.

    Returns:
        dict with ``n``, ``accuracy``, ``balanced_accuracy``, ``f1``, ``majority_baseline``,
        ``confusion_matrix`` (list of lists); ordinal heads add ``mae`` (in ``values`` units),
        ``one_off_accuracy``; binary heads add ``positive_rate``.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    keep = np.ones(len(labels), bool) if mask is None else np.asarray(mask).reshape(-1) > 0.5
    if not keep.any():
        return {"n": 0}
    dec = decode_head(attribute, logits[keep])
    y = labels[keep]
    pred = dec["index"]
    cm = confusion_matrix(y, pred, attribute.num_classes)
    counts = np.bincount(y, minlength=attribute.num_classes)
    out = {
        "n": int(keep.sum()),
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": balanced_accuracy(cm),
        "f1": macro_f1(cm),
        "majority_baseline": float(counts.max() / counts.sum()),
        "confusion_matrix": cm.tolist(),
    }
    if attribute.kind == "binary":
        out["positive_rate"] = float(np.mean(y == 1))
    if attribute.kind == "ordinal":
        values = np.asarray(attribute.values if attribute.values is not None else range(attribute.num_classes))
        out["mae"] = float(np.mean(np.abs(dec["value"] - values[y])))
        out["one_off_accuracy"] = float(np.mean(np.abs(pred - y) <= 1))
        out["within_tolerance_accuracy"] = float(np.mean(np.abs(pred - y) <= tolerance))
    if confidence is not None:
        conf = np.asarray(confidence).reshape(-1)[keep]
        right = np.abs(pred - y) <= tolerance
        answered = conf >= abstain_below
        out["coverage"] = float(np.mean(answered))
        out["selective_accuracy"] = float(np.mean(right[answered])) if answered.any() else float("nan")
        out["confidence_auc"] = _auc(conf, right)
    return out


def _auc(scores, positives):
    """ROC AUC of ``scores`` for ``positives`` (rank statistic); NaN if one class is absent."""
    positives = np.asarray(positives, bool)
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def summarize(per_head: dict) -> dict:
    """Means over heads: ``mean_accuracy``, ``mean_balanced_accuracy``, ``mean_majority_baseline``."""
    heads = [m for m in per_head.values() if m.get("n", 0) > 0]
    if not heads:
        return {}
    return {
        "mean_accuracy": float(np.mean([m["accuracy"] for m in heads])),
        "mean_balanced_accuracy": float(np.mean([m["balanced_accuracy"] for m in heads])),
        "mean_majority_baseline": float(np.mean([m["majority_baseline"] for m in heads])),
        "mean_f1": float(np.mean([m["f1"] for m in heads])),
    }
