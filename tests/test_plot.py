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
    train_line, val_line, best_mark = loss_ax.get_lines()
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
    train_line, best_mark = loss_ax.get_lines()  # no validation loss: every value missing
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


# ------------------------------------------------------------ what the figures say
def test_curves_mark_the_best_epoch_and_say_synthetic_data():
    pytest.importorskip("matplotlib")
    fig = plot.plot_history(_history(), title="adam", synthetic=True)
    assert fig._suptitle.get_text() == "adam (synthetic data)"
    for ax in fig.axes:  # val_accuracy is best at epoch 3 (0.62)
        marks = [line for line in ax.get_lines() if line.get_label() == "best epoch (3)"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [3, 3]
    chosen = plot.plot_history(_history(), best_epoch=2)
    assert any(line.get_label() == "best epoch (2)" for line in chosen.axes[0].get_lines())
    none = plot.plot_history(_history(), best_epoch=None)
    assert not any("best epoch" in line.get_label() for line in none.axes[0].get_lines())
    by_loss = plot.plot_history({"loss": [3.0, 2.0, 2.5], "val_loss": [3.0, 1.0, 2.0]})
    assert any(line.get_label() == "best epoch (2)" for line in by_loss.axes[0].get_lines())


def _capture(monkeypatch, module):
    """Make ``module.save_figure`` keep the figure it was given (and write nothing)."""
    figures = []
    monkeypatch.setattr(module, "save_figure", lambda fig, path: figures.append(fig) or path)
    return figures


def test_sweep_plots_draw_the_chance_level(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from minigrad.tune import report
    from minigrad.tune.sweep import SweepResults
    rows = [{"trial_id": f"t{i}", "status": "ok", "config": {"lr": lr}, "score": acc,
             "history": {"val_accuracy": [0.2, acc]}, "chance_accuracy": 0.25}
            for i, (lr, acc) in enumerate([(1e-3, 0.8), (1e-2, 0.26)])]
    figures = _capture(monkeypatch, report)
    report.plot_sweep(SweepResults(rows, ["lr"]), tmp_path)
    assert len(figures) == 2
    for fig in figures:
        ax = fig.axes[0]
        chance = [line for line in ax.get_lines() if line.get_label() == "chance (0.25)"]
        assert len(chance) == 1 and list(chance[0].get_ydata()) == [0.25, 0.25]
        assert "chance (0.25)" in [t.get_text() for t in ax.get_legend().get_texts()]
    figures.clear()
    loss_ranked = SweepResults(rows, ["lr"], metric="val_loss")  # no chance level for a loss
    report.plot_sweep(loss_ranked, tmp_path)
    assert not any("chance" in line.get_label() for fig in figures for line in
                   fig.axes[0].get_lines())


def _overlaps(a, b):
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_lab_landscapes_keep_legends_off_the_contours_and_paths_in_the_frame(
        tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from minigrad import lab
    from minigrad.lab import plots as lab_plots
    figures = _capture(monkeypatch, lab_plots)
    bowl = lab.ILL_CONDITIONED_BOWL
    runs = {"sgd": lab.run_optimizer("sgd", bowl, lr=0.6, steps=40),  # overshoots, diverges
            "adam": lab.run_optimizer("adam", bowl, start=(12.0, 4.0), lr=0.5, steps=40)}
    lab.plot_landscape(bowl, runs, tmp_path / "x.png")
    fig = figures[0]
    ax = fig.axes[0]
    fig.canvas.draw()
    legend_box = ax.get_legend().get_window_extent()
    assert not _overlaps(legend_box, ax.get_window_extent())
    assert _overlaps(legend_box, fig.bbox)  # under the axes, still in the figure
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    start = runs["adam"].path  # starts outside the function's box (x up to 10, y up to 3)
    assert x0 <= start[:, 0].min() and start[:, 0].max() <= x1 and start[:, 1].max() <= y1
    # The diverging path is cut at three box widths out; its end marker sits on the edge.
    assert runs["sgd"].diverged and y1 < 3 + 3 * 6 + 2
    end_marker = [line for line in ax.get_lines() if line.get_marker() == "X"][0]
    assert abs(end_marker.get_ydata()[0]) in (abs(y0), abs(y1))


def test_lr_finder_plot_shows_the_raw_loss_and_its_summary(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from minigrad.lab import plots as lab_plots
    from minigrad.lr_finder import LRFinderResult
    rng = np.random.default_rng(0)
    lrs = np.geomspace(1e-5, 1, 50)
    losses = 1.4 - 1.0 / (1 + np.exp(-(np.log10(lrs) + 3) * 3)) + 0.05 * rng.normal(size=50)
    result = LRFinderResult.from_losses(lrs, losses, 1e-5, 1)
    figures = _capture(monkeypatch, lab_plots)
    lab_plots.plot_lr_finder(result, tmp_path / "lr.png")
    ax = figures[0].axes[0]
    raw = [line for line in ax.get_lines() if "raw" in line.get_label()][0]
    assert np.allclose(raw.get_ydata(), losses)
    low, high = ax.get_ylim()
    assert low <= losses.min() and high >= losses.max()  # every raw loss in view
    assert figures[0]._supxlabel.get_text().replace("\n", " ") == result.summary()
