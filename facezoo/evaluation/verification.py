"""Face verification on LFW's View-2 pairs: cross-validated accuracy, ROC AUC, TAR at FAR, plots.

The protocol (Huang et al. 2007, "unrestricted" View 2): the pairs come in person-disjoint folds of 300
same-person and 300 different-person pairs. For each selected fold in turn, the distance threshold is chosen
on the *other* selected folds (the one of best accuracy) and the held-out fold is scored with it; the result is
the mean ± standard deviation of the fold accuracies. ROC AUC and TAR at FAR 1e-2 / 1e-3 are computed over the
pairs of all selected folds pooled (TAR at FAR f: the share of same-person pairs accepted at the strictest
threshold that accepts at most ``floor(f * n_different)`` different-person pairs; with 900 different pairs FAR
1e-3 means no false accept at all, which the report says).

``--folds`` selects folds: the staged LFW copy has folds 1-8, and the 863 "spare" people a verification model
may train on appear in folds 4-8 (``../shared/data/lfw/SOURCE.md``), so a model trained on them is scored on
folds 1-3 only; its card records that selection and ``facezoo evaluate`` uses it by default.

Embeddings come from a ``FaceEmbedder`` (``evaluate_model``: every photo through the analyze path — the shipped
detector, the face nearest the photo's centre, aligned onto the card's framing) or from any precomputed
``path -> vector`` mapping (``evaluate_embeddings``, e.g. dlib's own descriptors as the reference). A photo without
a face (or without a vector) makes its pairs "different" at distance infinity; the report counts them.
"""
from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

from facezoo.errors import MissingDataError, UsageError
from facezoo.tasks.pair_metrics import (  # noqa: F401  (re-exported: the protocol's metrics)
    _arrays, accuracy_at, best_threshold, cross_validate, folds_text, roc_auc, roc_curve, tar_at_far)

FARS = (1e-2, 1e-3)
ROC_FILE, TAR_FILE, HIST_FILE = "roc.png", "tar_at_far.png", "distances.png"


# ----------------------------------------------------------------------------- fold selection
def parse_folds(text) -> tuple[int, ...] | None:
    """``"1-3"``, ``"1,2,5"``, ``"1-3,6"``, ``"all"`` (None) or a sequence of ints -> sorted fold numbers."""
    if text is None:
        return None
    if not isinstance(text, str):
        try:
            folds = sorted({int(v) for v in text})
        except (TypeError, ValueError):
            raise UsageError(f"folds: expected fold numbers, got {text!r}") from None
    elif text.strip().lower() == "all":
        return None
    else:
        folds = set()
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            if not lo.isdigit() or (sep and not hi.isdigit()):
                raise UsageError(f"--folds {text!r}: expected fold numbers like 1-3 or 1,2,3 (or all)")
            a, b = int(lo), int(hi) if sep else int(lo)
            if b < a:
                raise UsageError(f"--folds {text!r}: range {part.strip()} runs backwards")
            folds.update(range(a, b + 1))
        folds = sorted(folds)
    if not folds or min(folds) < 1:
        raise UsageError(f"folds: fold numbers start at 1, got {text!r}")
    return tuple(folds)


def select_pairs(pairs, folds):
    """The pairs of the chosen folds (None: all); an absent fold is a ``UsageError``."""
    present = sorted({p.fold for p in pairs})
    if folds is None:
        return list(pairs)
    missing = sorted(set(folds) - set(present))
    if missing:
        raise UsageError(f"folds {folds_text(missing)} are not in the pairs file (it has folds {folds_text(present)})")
    return [p for p in pairs if p.fold in set(folds)]


def evaluate_distances(distances, same, folds, *, threshold: float | None = None) -> dict:
    """The whole summary from pair distances, labels and fold numbers (``+inf``: a pair that failed)."""
    d, s = _arrays(distances, same)
    cv = cross_validate(d, s, folds)
    summary = {"accuracy": cv["accuracy_mean"], "accuracy_std": cv["accuracy_std"], "auc": roc_auc(d, s)}
    tars = {}
    for far in FARS:
        t = tar_at_far(d, s, far)
        summary[f"tar_at_far_{far:g}"] = t["tar"]
        tars[f"{far:g}"] = t
    best, best_acc = best_threshold(d, s)
    summary.update({"n_pairs": int(len(d)), "n_same": int(s.sum()), "n_failed_pairs": int((~np.isfinite(d)).sum()),
                    "pooled_best_threshold": best, "pooled_best_accuracy": best_acc})
    if threshold is not None:
        summary["accuracy_at_threshold"] = accuracy_at(d, s, threshold)
        summary["threshold"] = float(threshold)
    return {"summary": summary, "per_fold": cv["per_fold"], "tar_at_far": tars}


# ----------------------------------------------------------------------------- pairs -> distances
def pair_distances(pairs, vector_of) -> np.ndarray:
    """Euclidean distance of each pair; ``vector_of(path)`` gives a vector or None (distance +inf)."""
    out = np.empty(len(pairs))
    for i, p in enumerate(pairs):
        a, b = vector_of(p.path_a), vector_of(p.path_b)
        if a is None or b is None or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            out[i] = np.inf
        else:
            out[i] = float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))
    return out


def _lookup(vectors: Mapping):
    """``path -> vector or None`` over a mapping keyed by full paths, paths relative to any root, or file names."""
    by_name = {}
    for k in vectors:
        by_name.setdefault(os.path.basename(os.fspath(k)), k)

    def vector_of(path):
        if path in vectors:
            return vectors[path]
        key = by_name.get(os.path.basename(path))
        return None if key is None else vectors[key]

    return vector_of


def load_pairs(data_dir: str):
    """The View-2 pairs of an LFW root holding ``pairs.txt`` and the image folder."""
    from facezoo.data.lfw_pairs import read_pairs
    if not os.path.isdir(data_dir):
        raise MissingDataError(f"data directory {data_dir} does not exist")
    pairs_txt = os.path.join(data_dir, "pairs.txt")
    if not os.path.isfile(pairs_txt):
        raise MissingDataError(f"{data_dir}: no pairs.txt (LFW View-2 pairs file) in it")
    return read_pairs(pairs_txt, data_dir)


def evaluate_embeddings(vectors: Mapping, pairs, folds=None, *, threshold: float | None = None) -> dict:
    """The protocol on precomputed embeddings: ``vectors`` maps image path (full, relative or file name) -> vector.

    Args:
        vectors: e.g. ``{"Aaron_Peirsol/Aaron_Peirsol_0001.jpg": dlib_vector, ...}``; images without a vector
            count as failed pairs (distance +inf).
        pairs: ``LfwPair`` list (``facezoo.data.lfw_pairs.read_pairs``, or ``load_pairs(root)``).
        folds: fold numbers to use (None: all).
        threshold: also report the accuracy at this fixed threshold.
    """
    chosen = select_pairs(pairs, parse_folds(folds) if folds is not None else None)
    vector_of = _lookup(vectors)
    missing = sorted({p for pair in chosen for p in (pair.path_a, pair.path_b) if vector_of(p) is None})
    d = pair_distances(chosen, vector_of)
    result = evaluate_distances(d, [p.same for p in chosen], [p.fold for p in chosen], threshold=threshold)
    result["summary"]["n_images_without_vector"] = len(missing)
    result["folds"] = sorted({p.fold for p in chosen})
    result["distances"] = d
    result["same"] = np.array([p.same for p in chosen])
    return result


def model_vectors(embedder, paths, *, batch_size: int = 32, progress: bool = True) -> dict:
    """``{path: embedding or None}``: every photo detected, its central face (LFW's convention) aligned and embedded."""
    from tqdm.auto import tqdm
    paths = list(paths)
    out = {}
    with tqdm(total=len(paths), desc="embed", unit="img", disable=not progress, mininterval=5) as bar:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            vectors, _faces = embedder.embed_faces(chunk, detect=True, batch_size=batch_size, pick="center")
            for p, v in zip(chunk, vectors):
                out[p] = None if np.isnan(v).any() else v
            bar.update(len(chunk))
    return out


def evaluate_model(embedder, pairs, folds=None, *, threshold: float | None = None, batch_size: int = 32,
                   progress: bool = True) -> dict:
    """The protocol for a ``FaceEmbedder`` on LFW photos (detect + align + embed every image once)."""
    chosen = select_pairs(pairs, parse_folds(folds) if folds is not None else None)
    paths = sorted({p for pair in chosen for p in (pair.path_a, pair.path_b)})
    vectors = model_vectors(embedder, paths, batch_size=batch_size, progress=progress)
    result = evaluate_embeddings(vectors, chosen, None, threshold=threshold)
    result["summary"]["n_images"] = len(paths)
    result["summary"]["n_images_without_face"] = result["summary"].pop("n_images_without_vector")
    return result


# ----------------------------------------------------------------------------- the command
def is_verification_model(model: str, directory: str | None = None) -> bool:
    """True when ``model`` names a registered (or ``directory``) model whose card task is ``verification``."""
    from facezoo import zoo
    if directory is None:
        if model.endswith(".keras") or model not in zoo.list_models():
            return False
        directory = zoo.model_dir(model)
    return zoo.ModelCard.from_json(os.path.join(directory, zoo.CARD_FILE)).task == "verification"


def evaluate_verification(model, data_dir: str, *, folds=None, out: str | None = None, batch_size: int = 32,
                          plots: bool = True, latency: bool = True, directory: str | None = None,
                          progress: bool = True, flip_test: bool | None = None) -> dict:
    """``facezoo evaluate <verification model> --data-dir <lfw>``: the report dict (written to ``out``).

    ``folds`` defaults to the card's ``training_data["evaluation_folds"]`` (the folds no training person is in),
    else every fold of ``pairs.txt``. The card's threshold is scored too (``accuracy_at_threshold``).
    ``flip_test`` (None: the card's ``architecture["flip_test"]``) embeds each face with its mirror image.
    """
    from facezoo import zoo
    from facezoo.inference.embedding import FaceEmbedder
    if isinstance(model, FaceEmbedder):
        embedder, name = model, model.card.name
    else:
        # The shipped Keras model (the one its card describes), whatever backend ``auto`` would pick.
        embedder, name = zoo.load(model, directory=directory, backend="keras"), model
        if not isinstance(embedder, FaceEmbedder):
            raise UsageError(f"{model} is a {embedder.card.task} model; this protocol needs a verification model")
    card = embedder.card
    if flip_test is not None:
        embedder.flip_test = bool(flip_test)
    pairs = load_pairs(data_dir)
    chosen = parse_folds(folds)
    source = "--folds"
    if folds is None:
        card_folds = card.training_data.get("evaluation_folds")
        chosen, source = (tuple(card_folds), "the model card") if card_folds else (None, "all folds")
    result = evaluate_model(embedder, pairs, chosen, threshold=card.thresholds.get("distance"),
                            batch_size=batch_size, progress=progress)
    used = result["folds"]
    note = card.training_data.get("folds_note", "")
    if source == "all folds":
        note = note or ("every fold of pairs.txt; if the model trained on LFW people, select the folds none of "
                        "them is in with --folds")
    report = {"model": name, "task": "verification", "protocol": "LFW View-2 pairs, leave-one-fold-out threshold",
              "data": {"data_dir": os.path.abspath(data_dir), "folds": used, "folds_from": source, "note": note},
              "summary": result["summary"], "per_fold": result["per_fold"], "tar_at_far": result["tar_at_far"],
              "flip_test": bool(embedder.flip_test),
              "params": int(embedder.model.count_params()),
              "size_bytes": sum(os.path.getsize(os.path.join(directory or zoo.model_dir(name), f))
                                for f in card.files) if not isinstance(model, FaceEmbedder) else None}
    if latency:
        from facezoo.evaluation.report import batch1_latency_ms
        report["batch1_latency_ms"] = round(batch1_latency_ms(getattr(embedder, "inference_model", embedder.model)), 2)
        report["photo_latency_ms"] = round(photo_latency_ms(embedder), 2)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(report, f, indent=1)
        if plots:
            plot_all(result["distances"], result["same"], out, title=f"{name} on LFW folds {folds_text(used)}",
                     threshold=card.thresholds.get("distance"))
    return report


def photo_latency_ms(embedder, runs: int = 20) -> float:
    """Median time of ``embed`` on the bundled photo (decode, detect, align, embed one face), milliseconds."""
    import time

    from facezoo.images import read_image_file
    from facezoo.zoo import sample_photo
    data = read_image_file(sample_photo())
    for _ in range(3):
        embedder.embed(data, detect=True)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        embedder.embed(data, detect=True)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


def format_table(report: dict) -> str:
    """Plain-text summary of a verification report."""
    s, data = report["summary"], report["data"]
    lines = [f"{report['model']} on LFW View-2 pairs, folds {folds_text(data['folds'])} (from {data['folds_from']}): "
             f"{s['n_pairs']} pairs ({s['n_same']} same), {s.get('n_images', '?')} images"]
    if data.get("note"):
        lines.append(f"  folds: {data['note']}")
    lines.append("")
    lines.append(f"{'fold':>6s} {'threshold':>10s} {'accuracy':>9s}")
    for p in report["per_fold"]:
        lines.append(f"{p['fold']:6d} {p['threshold']:10.4f} {p['accuracy']:9.4f}")
    lines.append("")
    lines.append(f"{'accuracy (threshold from the other folds)':44s} {s['accuracy']:.4f} ± {s['accuracy_std']:.4f}")
    lines.append(f"{'ROC AUC':44s} {s['auc']:.4f}")
    for far, t in report["tar_at_far"].items():
        extra = "" if t["exact"] else f" (= no false accept among {t['n_different']})"
        lines.append(f"{'TAR at FAR ' + far:44s} {t['tar']:.4f}{extra}")
    if "accuracy_at_threshold" in s:
        lines.append(f"{'accuracy at the card threshold ' + format(s['threshold'], '.4f'):44s} "
                     f"{s['accuracy_at_threshold']:.4f}")
    if s.get("n_failed_pairs"):
        lines.append(f"{'pairs with a faceless image (counted wrong)':44s} {s['n_failed_pairs']}")
    if report.get("params"):
        lines.append(f"{'params':44s} {report['params']:,}")
    if "batch1_latency_ms" in report:
        lines.append(f"{'batch-1 network latency (tf.function, BN folded)':44s} {report['batch1_latency_ms']:.2f} ms")
    if "photo_latency_ms" in report:
        lines.append(f"{'one photo: decode + detect + align + embed':44s} {report['photo_latency_ms']:.2f} ms")
    if report.get("flip_test"):
        lines.append("flip test: each face embedded with its mirror image (normalised mean)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots
def plot_all(distances, same, out: str, *, title: str = "", threshold: float | None = None) -> list[str]:
    """Writes ``roc.png`` (linear), ``tar_at_far.png`` (log FAR, the FARs marked) and ``distances.png``."""
    from facezoo.evaluation.plots import _pyplot
    plt = _pyplot()
    if plt is None:
        return []
    d, s = _arrays(distances, same)
    far, tar, _t = roc_curve(d, s)
    written = []
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(far, tar, lw=2, label=f"AUC {roc_auc(d, s):.4f}")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="false accept rate (different pairs accepted)", ylabel="true accept rate", title=title or "ROC",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(os.path.join(out, ROC_FILE))
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    n_neg = max(int((~s).sum()), 1)
    floor = 0.5 / n_neg
    ax.step(np.maximum(far, floor), tar, where="post", lw=2)
    for target in FARS:
        t = tar_at_far(d, s, target)
        ax.axvline(target, ls="--", c="grey", lw=1)
        ax.annotate(f"TAR {t['tar']:.3f} @ FAR {target:g}", (target, t["tar"]), textcoords="offset points",
                    xytext=(5, -12), fontsize=8)
    ax.set_xscale("log")
    ax.set(xlabel=f"false accept rate (log; {n_neg} different pairs)", ylabel="true accept rate",
           title=title or "TAR at FAR", ylim=(0, 1.01), xlim=(floor, 1))
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    written.append(os.path.join(out, TAR_FILE))
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    finite = np.isfinite(d)
    bins = np.linspace(d[finite].min(), d[finite].max(), 50) if finite.any() else 10
    ax.hist(d[s & finite], bins=bins, alpha=0.6, label=f"same person ({int(s.sum())})", color="tab:green")
    ax.hist(d[~s & finite], bins=bins, alpha=0.6, label=f"different people ({int((~s).sum())})", color="tab:red")
    if threshold is not None:
        ax.axvline(threshold, c="k", ls="--", label=f"card threshold {threshold:.3f}")
    ax.set(xlabel="embedding distance", ylabel="pairs", title=title or "pair distances")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(os.path.join(out, HIST_FILE))
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)
    return written
