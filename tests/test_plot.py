"""Plots: curves and confusion matrix as PNG; a clear message without matplotlib."""
import numpy as np
import pytest

from minigrad import plot
from minigrad.train import History


def _history():
    h = History()
    for epoch, (loss, acc, vl, va) in enumerate([(1.2, 0.4, 1.1, 0.45), (0.8, 0.7, 0.9, 0.6),
                                                 (0.5, 0.85, 0.95, 0.62)]):
        h.append(epoch, {"loss": loss, "accuracy": acc, "val_loss": vl, "val_accuracy": va})
    return h


def test_curves_png_has_loss_and_accuracy_panels(tmp_path):
    pytest.importorskip("matplotlib")
    fig = plot.plot_history(_history(), tmp_path / "curves.png", title="adam")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "Loss" and acc_ax.get_title() == "Accuracy"
    train_line, val_line = loss_ax.get_lines()
    assert list(train_line.get_ydata()) == [1.2, 0.8, 0.5]
    assert list(val_line.get_ydata()) == [1.1, 0.9, 0.95]
    assert list(acc_ax.get_lines()[1].get_xdata()) == [1, 2, 3]


def test_curves_accept_the_history_json_form_and_regression_runs():
    pytest.importorskip("matplotlib")
    fig = plot.plot_history(_history().to_dict())
    assert len(fig.axes) == 2
    only_loss = plot.plot_history({"loss": [3.0, 2.0]})  # no accuracy, no validation
    assert len(only_loss.axes) == 1 and len(only_loss.axes[0].get_lines()) == 1
    with pytest.raises(ValueError, match="no 'loss'"):
        plot.plot_history({"accuracy": [0.5]})


def test_curves_draw_nulls_of_history_json_as_gaps():
    pytest.importorskip("matplotlib")
    # history.json stores a NaN loss (a diverged epoch) as null
    data = {"loss": [1.0, None, 0.5], "accuracy": [0.4, None, 0.6],
            "val_loss": [None, None, None], "val_accuracy": [0.5, 0.55, None]}
    loss_ax, acc_ax = plot.plot_history({"history": data}).axes
    train_line, = loss_ax.get_lines()  # no validation curve: every value missing
    assert np.array_equal(train_line.get_ydata(), [1.0, np.nan, 0.5], equal_nan=True)
    assert np.array_equal(acc_ax.get_lines()[1].get_ydata(), [0.5, 0.55, np.nan],
                          equal_nan=True)


def test_confusion_png_names_classes_and_prints_counts(tmp_path):
    pytest.importorskip("matplotlib")
    matrix = np.array([[5, 1, 0, 0], [0, 7, 1, 0], [2, 0, 4, 0], [0, 0, 1, 9]])
    classes = ["bee", "other_insect", "other_noinsect", "wasp"]
    fig = plot.plot_confusion(matrix, classes, tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert [t.get_text() for t in ax.get_yticklabels()] == classes
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(matrix.ravel().tolist())
    assert "accuracy 0.833" in ax.get_title()  # 25 of 30
    with pytest.raises(ValueError, match="square"):
        plot.plot_confusion(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="3 class names"):
        plot.plot_confusion(np.eye(2), ["a", "b", "c"])


def test_text_confusion_table():
    text = plot.format_confusion(np.array([[3, 1], [0, 12]]), ["ants", "bees"])
    assert text.splitlines() == ["true \\ predicted ants bees",
                                 "ants                3    1",
                                 "bees                0   12"]


def test_outputs_past_the_class_names_get_their_index_as_a_name(tmp_path):
    """evaluate() gives a 4-output model on 2-class data a 4x4 matrix: rows line up."""
    matrix = np.array([[1, 0, 0, 9], [0, 10, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert plot.format_confusion(matrix, ["ants", "bees"]).splitlines() == [
        "true \\ predicted ants bees    2    3",
        "ants                1    0    0    9",
        "bees                0   10    0    0",
        "2                   0    0    0    0",
        "3                   0    0    0    0"]
    with pytest.raises(ValueError, match="square"):
        plot.format_confusion(np.zeros((2, 3)))
    pytest.importorskip("matplotlib")
    fig = plot.plot_confusion(matrix, ["ants", "bees"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["ants", "bees", "2", "3"]


def test_without_matplotlib_the_message_says_how_to_install(no_matplotlib):
    assert not plot.plots_available()
    with pytest.raises(plot.PlotUnavailable, match=r"pip install 'minigrad\[plot\]'"):
        plot.plot_history(_history())
    with pytest.raises(ImportError, match="matplotlib"):
        plot.plot_confusion(np.eye(2))
    assert "ants" in plot.format_confusion(np.eye(2), ["ants", "bees"])  # text needs nothing
