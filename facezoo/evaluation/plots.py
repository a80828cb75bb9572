"""PNG plots people would rather look at than read: training curves, per-attribute accuracy,
confusion matrices, parameter histograms. Matplotlib (extra ``plots``) is imported lazily; without
it the functions print one line and return None.
"""
from __future__ import annotations

import numpy as np


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("matplotlib is not installed (pip install facezoo[plots]); skipping the plot")
        return None


def plot_history(history: list[dict], path: str, datasets=()):
    """Loss and validation curves per epoch: loss, learning rate, and the headline metrics of ``datasets``.

    Only the named data sets' metrics are drawn (all when ``datasets`` is empty), so the card of one
    branch of a joint run shows that data set's curves alone.
    """
    plt = _pyplot()
    if plt is None or not history:
        return None
    epochs = [r["epoch"] for r in history]
    wanted = tuple(f"{d}/" for d in datasets)
    metric_keys = [k for k in history[-1] if "/" in k and (not wanted or k.startswith(wanted))
                   and (k.endswith("/mean_accuracy") or k.endswith("_mae")
                   or k.endswith("/gender_accuracy") or k.endswith("/race_accuracy")
                   or k.endswith("/mean_balanced_accuracy"))]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(epochs, [r["loss"] for r in history], marker="o")
    axes[0].set(title="training loss", xlabel="epoch")
    acc = [k for k in metric_keys if not k.endswith("_mae")]
    for k in acc:
        axes[1].plot(epochs, [r.get(k, np.nan) for r in history], marker="o", label=k)
    axes[1].set(title="validation accuracy", xlabel="epoch")
    if acc:
        axes[1].legend(fontsize=8)
    mae = [k for k in metric_keys if k.endswith("_mae")]
    for k in mae:
        axes[2].plot(epochs, [r.get(k, np.nan) for r in history], marker="o", label=k)
    if not mae:
        axes[2].plot(epochs, [r["lr"] for r in history], marker="o", label="learning rate")
    axes[2].set(title="validation MAE" if mae else "learning rate", xlabel="epoch")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_per_attribute(per_head: dict, path: str, baseline_key="majority_baseline", title="accuracy per attribute"):
    """Horizontal bars of accuracy per classification head, with the majority-class baseline marked.

    Heads with a mean absolute error (ordinal heads such as age, where exact-class accuracy says little)
    get a second panel of their MAE instead.
    """
    plt = _pyplot()
    if plt is None or not per_head:
        return None
    classified = {n: m for n, m in per_head.items() if "mae" not in m}
    regressed = {n: m for n, m in per_head.items() if "mae" in m}
    panels = 1 + bool(regressed) if classified else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 0.28 * max(len(classified), 3) + 1.2), squeeze=False)
    if regressed:
        ax = axes[0, -1]
        names = [n.split("__", 1)[-1] for n in regressed]
        y = np.arange(len(names))
        ax.barh(y, [m["mae"] for m in regressed.values()], color="tab:orange")
        for i, m in enumerate(regressed.values()):
            ax.text(m["mae"], i, f" {m['mae']:.2f}", va="center", fontsize=8)
        ax.set_yticks(y, names, fontsize=8)
        ax.set(title="mean absolute error (lower is better)", xlabel="MAE")
        ax.grid(axis="x", alpha=0.3)
    if not classified:
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path
    ax = axes[0, 0]
    names = [n.split("__", 1)[-1] for n in classified]
    acc = [m.get("accuracy", np.nan) for m in classified.values()]
    base = [m.get(baseline_key, np.nan) for m in classified.values()]
    y = np.arange(len(names))
    ax.barh(y, acc, color="tab:blue", label="accuracy")
    ax.scatter(base, y, color="tab:red", marker="|", s=120, label="majority baseline", zorder=3)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(min(0.5, np.nanmin(base) - 0.05), 1.0)
    ax.set(title=title, xlabel="accuracy")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_confusion(cm, classes, path, title="confusion matrix"):
    """Row-normalised confusion matrix: each cell shows the row share in percent and the count."""
    plt = _pyplot()
    if plt is None:
        return None
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    n = len(classes)
    side = max(3.5, 1.6 + 0.9 * n)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{100 * norm[i, j]:.0f}%\n{cm[i, j]}", ha="center", va="center", fontsize=9,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_parameter_histogram(model, path):
    """Histogram of all weight values (the Adience report's parameter-value histogram)."""
    plt = _pyplot()
    if plt is None:
        return None
    values = np.concatenate([np.asarray(w).ravel() for w in model.trainable_weights])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(values, bins=200, log=True, color="tab:gray")
    ax.set(title=f"{model.name}: {values.size:,} trainable parameters", xlabel="value", ylabel="count (log)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
