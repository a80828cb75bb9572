"""Metrics of pair distances (``distance <= threshold`` means "same person"): best threshold, accuracy, ROC AUC,
ROC curve, TAR at FAR, leave-one-fold-out cross-validation. numpy only; ``facezoo.evaluation.verification``
builds the LFW protocol on them and ``facezoo.tasks.verify`` validates with them.
"""
from __future__ import annotations

import numpy as np

from facezoo.errors import UsageError


def folds_text(folds) -> str:
    """(1, 2, 3, 5) -> '1-3,5'."""
    out, run = [], []
    for f in sorted(folds):
        if run and f == run[-1] + 1:
            run.append(f)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [f]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def _arrays(distances, same):
    d = np.asarray(distances, np.float64).reshape(-1)
    s = np.asarray(same, bool).reshape(-1)
    if len(d) != len(s):
        raise UsageError(f"{len(d)} distances but {len(s)} labels")
    if np.isnan(d).any():
        raise UsageError("distances contain NaN (use +inf for pairs that could not be embedded)")
    return d, s


def best_threshold(distances, same) -> tuple[float, float]:
    """``(threshold, accuracy)``: the cut ``distance <= threshold`` of best accuracy on these pairs.

    Cuts lie midway between consecutive distinct distances (or below the smallest / above the largest finite one);
    among equally accurate cuts the one in the middle of the best run is taken.
    """
    d, s = _arrays(distances, same)
    order = np.argsort(d, kind="stable")
    ds, ss = d[order], s[order]
    n, n_diff = len(d), int((~s).sum())
    cum_same = np.concatenate([[0], np.cumsum(ss)])
    cum_diff = np.concatenate([[0], np.cumsum(~ss)])
    # Cut after the first i pairs (i = 0..n), only where the distance changes.
    valid = np.ones(n + 1, bool)
    valid[1:n] = ds[1:] > ds[:-1]
    valid[1:][~np.isfinite(ds)] = False  # a failed pair (distance +inf) is never accepted
    acc = (cum_same + (n_diff - cum_diff)) / max(n, 1)
    acc = np.where(valid, acc, -1.0)
    best = np.flatnonzero(acc == acc.max())
    i = int(best[len(best) // 2])
    finite = ds[np.isfinite(ds)]
    if i == 0:
        threshold = (finite[0] - 1e-6) if len(finite) else 0.0
    elif i == n or not np.isfinite(ds[i]):
        threshold = float(ds[i - 1]) + 1e-6  # ds[i - 1] is finite: cuts after an infinite distance are invalid
    else:
        threshold = 0.5 * (ds[i - 1] + ds[i])
    return float(threshold), float(acc[i])


def accuracy_at(distances, same, threshold: float) -> float:
    d, s = _arrays(distances, same)
    return float(np.mean((d <= threshold) == s)) if len(d) else float("nan")


def roc_auc(distances, same) -> float:
    """P(a different-person pair is farther than a same-person pair), ties counting half (Mann-Whitney)."""
    d, s = _arrays(distances, same)
    n_pos, n_neg = int(s.sum()), int((~s).sum())
    if not n_pos or not n_neg:
        raise UsageError("ROC AUC needs both same-person and different-person pairs")
    _, inverse, counts = np.unique(d, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mid_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    ranks = mid_rank[inverse]
    # Rank by distance ascending; "positive score" is -distance, so count negatives ranked above positives.
    u = ranks[~s].sum() - n_neg * (n_neg + 1) / 2.0  # pairs (neg, pos) with neg distance > pos distance
    return float(u / (n_pos * n_neg))


def roc_curve(distances, same):
    """``(far, tar, thresholds)`` for every distinct cut ``distance <= t``, from strictest to loosest."""
    d, s = _arrays(distances, same)
    order = np.argsort(d, kind="stable")
    ds, ss = d[order], s[order]
    last = np.r_[ds[1:] > ds[:-1], True]  # last index of each distinct distance
    tp = np.cumsum(ss)[last]
    fp = np.cumsum(~ss)[last]
    n_pos, n_neg = max(int(s.sum()), 1), max(int((~s).sum()), 1)
    far = np.r_[0.0, fp / n_neg]
    tar = np.r_[0.0, tp / n_pos]
    thresholds = np.r_[-np.inf, ds[last]]
    return far, tar, thresholds


def tar_at_far(distances, same, far: float) -> dict:
    """TAR at the strictest-but-loosest cut that accepts at most ``floor(far * n_different)`` different pairs."""
    d, s = _arrays(distances, same)
    impostor = np.sort(d[~s])
    genuine = d[s]
    allowed = int(np.floor(far * len(impostor) + 1e-9))
    if allowed >= len(impostor):
        threshold, tar = np.inf, 1.0
    else:
        bound = impostor[allowed]  # accepting pairs strictly closer than this keeps false accepts <= allowed
        tar = float(np.mean(genuine < bound)) if len(genuine) else float("nan")
        threshold = float(bound)
    return {"far": far, "tar": tar, "false_accepts_allowed": allowed, "n_different": int(len(impostor)),
            "threshold_below": threshold,
            "exact": bool(allowed >= 1)}


def cross_validate(distances, same, folds) -> dict:
    """Leave-one-fold-out: threshold chosen on the other folds, accuracy on the held-out fold."""
    d, s = _arrays(distances, same)
    f = np.asarray(folds).reshape(-1)
    unique = sorted(set(f.tolist()))
    if len(unique) < 2:
        raise UsageError(f"cross-validation needs at least 2 folds, got {folds_text(unique) or 'none'}; "
                         "select more folds")
    per_fold = []
    for fold in unique:
        held = f == fold
        threshold, train_acc = best_threshold(d[~held], s[~held])
        per_fold.append({"fold": int(fold), "threshold": threshold,
                         "accuracy": accuracy_at(d[held], s[held], threshold),
                         "threshold_accuracy_on_other_folds": train_acc, "n_pairs": int(held.sum())})
    accs = np.array([p["accuracy"] for p in per_fold])
    return {"accuracy_mean": float(accs.mean()), "accuracy_std": float(accs.std()), "per_fold": per_fold}
