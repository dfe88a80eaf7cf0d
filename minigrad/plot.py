"""Plots of a training run: loss/accuracy curves and the confusion matrix.

matplotlib is optional (``pip install 'minigrad[plot]'``). Without it the plotting
functions raise :class:`PlotUnavailable`, an ``ImportError`` whose message says how
to install it; :func:`format_confusion` (a text table) needs nothing.

Figures are drawn on ``matplotlib.figure.Figure`` directly, not through pyplot, so
saving works without a display and from any thread.
"""
import io
import math
from pathlib import Path

import numpy as np

from .io import atomic_write
from .train import History, history_dict

__all__ = ["PlotUnavailable", "plots_available", "figure_class", "save_figure",
           "plot_history", "plot_confusion", "format_confusion"]

INSTALL_HINT = "pip install 'minigrad[plot]'"


class PlotUnavailable(ImportError):
    """matplotlib is not installed; the message says how to get the plots."""


def plots_available():
    """True when matplotlib can be imported."""
    try:
        figure_class()
    except PlotUnavailable:
        return False
    return True


def figure_class(what="plots"):
    """``matplotlib.figure.Figure``, or :class:`PlotUnavailable` saying ``what`` needs it."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailable(f"{what} need matplotlib, which is not installed ({exc}); "
                              f"install it with: {INSTALL_HINT}") from None
    return Figure


def save_figure(fig, path, dpi=110):
    """Write ``fig`` to ``path`` atomically (format from the suffix, PNG without one).

    The image is rendered to memory first and then written with
    :func:`minigrad.io.atomic_write` (which makes missing folders), so a crash never
    leaves a half-written file. A file object is written to directly. Returns the
    path as a ``Path`` (or the file object).
    """
    if hasattr(path, "write"):
        fig.savefig(path, dpi=dpi)
        return path
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix[1:] or "png", dpi=dpi)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return Path(path)


def plot_history(history, path=None, title=None, best_epoch="auto", synthetic=False):
    """Training vs validation loss and accuracy per epoch, side by side.

    ``history`` is a :class:`minigrad.train.History`, its ``.history`` dict or
    the contents of ``history.json`` (whose nulls, NaN in training, leave gaps).
    ``best_epoch`` (1-based) is marked on both panels; ``"auto"``: the epoch of the
    best validation accuracy (else validation loss) when there is one, ``None``: no
    mark. ``synthetic=True`` says in the title that the data were generated.
    Saves a PNG to ``path`` when given; returns the matplotlib ``Figure``.
    """
    data = history_dict(history)
    if not data.get("loss"):
        raise ValueError("the history has no 'loss' values to plot")
    if best_epoch == "auto":
        best_epoch = _best_epoch(data)
    if synthetic:
        title = f"{title} (synthetic data)" if title else "synthetic data"
    Figure = figure_class()
    panels = [("loss", "Loss")] + ([("accuracy", "Accuracy")] if data.get("accuracy") else [])
    fig = Figure(figsize=(5.2 * len(panels), 4.0), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, label) in zip(axes, panels):
        epochs = np.arange(1, len(data[key]) + 1)
        ax.plot(epochs, _as_floats(data[key]), "o-", label=f"training {label.lower()}")
        val = _as_floats(data.get("val_" + key) or [])
        if val and not all(math.isnan(v) for v in val):
            ax.plot(epochs, val, "s--", label=f"validation {label.lower()}")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:green", linestyle=":", linewidth=1.5,
                       label=f"best epoch ({best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label.lower())
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
        if key == "accuracy":
            ax.set_ylim(0, 1.02)
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def _best_epoch(data):
    """The 1-based epoch of the best validation accuracy (else loss), or ``None``."""
    for monitor in ("val_accuracy", "val_loss"):
        values = _as_floats(data.get(monitor) or [])
        if values and not all(math.isnan(v) for v in values):
            return History({monitor: values}, list(range(len(values)))).best(monitor)[0] + 1
    return None


def _as_floats(values):
    """Per-epoch values with ``None`` (how history.json stores NaN) as NaN: a gap."""
    return [math.nan if v is None else float(v) for v in values]


def plot_confusion(confusion, classes=None, path=None, title="Confusion matrix",
                   normalize=False):
    """The confusion matrix as a heat map with counts, class names on both axes.

    Rows are true classes, columns predicted ones. ``normalize=True`` colours by
    the fraction of each true class (counts are still printed). Saves a PNG to
    ``path`` when given; returns the ``Figure``.
    """
    matrix = np.asarray(confusion)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    k = matrix.shape[0]
    classes = _row_names(classes, k)
    Figure = figure_class()
    rows = matrix.sum(axis=1, keepdims=True)
    shade = matrix / np.maximum(rows, 1) if normalize else matrix
    side = 1.2 + 0.9 * k
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shade, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), classes, rotation=45 if max(map(len, classes)) > 5 else 0,
                  ha="right" if max(map(len, classes)) > 5 else "center")
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = matrix.sum()
    accuracy = np.trace(matrix) / total if total else float("nan")
    ax.set_title(f"{title} (accuracy {accuracy:.3f})" if title else None)
    limit = shade.max() if shade.size else 0
    for i in range(k):
        for j in range(k):
            light = shade[i, j] > 0.55 * limit
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                    color="white" if light else "black", fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig


def format_confusion(confusion, classes=None):
    """The confusion matrix as an aligned text table (rows true, columns predicted)."""
    matrix = np.asarray(confusion)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {matrix.shape}")
    k = matrix.shape[0]
    classes = _row_names(classes, k)
    width = max([len(c) for c in classes] + [len(str(int(matrix.max()))) if matrix.size else 1])
    first = max(len("true \\ predicted"), width)
    lines = ["true \\ predicted".ljust(first) + " " + " ".join(c.rjust(width) for c in classes)]
    for name, row in zip(classes, matrix):
        lines.append(name.ljust(first) + " " + " ".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)


def _row_names(classes, k):
    """Names for the k rows of a confusion matrix: the class names, then the indices
    of outputs past them (evaluate() gives a model with more outputs than the data
    has classes a row and a column for each output)."""
    names = [str(c) for c in (classes if classes is not None else ())]
    if len(names) > k:
        raise ValueError(f"{len(names)} class names for a {k}x{k} confusion matrix")
    return names + [str(i) for i in range(len(names), k)]
