"""Plots every chapter draws the same way."""

from __future__ import annotations

import matplotlib.pyplot as plt


def plot_curves(runs: dict, metric: str = "accuracy", *, ax=None, title: str | None = None):
    """Training (dashed) and validation (solid) curves of ``metric`` per epoch, one colour per run.

    ``runs`` maps a label to a Keras ``History.history`` dict or anything with
    a ``history`` attribute holding one (a ``History`` or a ``TrainingRun``).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, (label, run) in enumerate(runs.items()):
        history = getattr(run, "history", run)
        if f"val_{metric}" not in history:
            raise KeyError(f"run {label!r} has no 'val_{metric}': was it fit with validation data?")
        colour = f"C{i}"
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], "--", color=colour, alpha=0.7, label=f"{label} (train)")
        ax.plot(epochs, history[f"val_{metric}"], "-", color=colour, label=f"{label} (validation)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax
