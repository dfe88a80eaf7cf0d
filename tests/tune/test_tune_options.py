"""Sweep settings and trial outputs beyond the defaults: which way a metric improves,
unknown metrics, NumPy histories, halving settings, array-valued search spaces, and
what the parameter plot draws. Stand-in trial functions, no training."""
import argparse

import numpy as np
import pytest

from minigrad.tune import (Halving, SearchSpace, SweepMetricError, SweepResults,
                           execute_trial)
from minigrad.tune import report
from minigrad.tune.cli import add_sweep_arguments, run_sweep_cli
from minigrad.tune.trial import history_metrics
from tests.helpers.sweep import quiet_sweep


def scored_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """A history with ``val_f1 = config["f1"]`` every epoch, and the usual keys."""
    return {"history": {"loss": [0.5] * epochs, "val_loss": [0.5] * epochs,
                        "val_accuracy": [0.5] * epochs, "val_f1": [config["f1"]] * epochs}}


def numpy_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """A history of NumPy arrays (a loss of NaN in the last epoch with ``config["nan"]``)."""
    loss = np.full(epochs, 0.5)
    if config.get("nan"):
        loss[-1] = np.nan
    return {"history": {"loss": loss, "val_accuracy": np.linspace(0.5, 0.7, epochs)}}


def failing_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """``scored_trial``, or a failure when ``config["fail"]``."""
    if config.get("fail"):
        raise RuntimeError("boom")
    return scored_trial(config, epochs)


def _sweep(space, out, trial_fn=scored_trial, **kwargs):
    return quiet_sweep(space, out, trial_fn, **kwargs)


def _cli(argv, trial_fn=scored_trial):
    return run_sweep_cli(add_sweep_arguments(argparse.ArgumentParser()).parse_args(argv),
                         trial_fn)


# --------------------------------------------------------------------------- mode
def test_mode_max_ranks_a_metric_without_acc_in_its_name_highest_first(tmp_path):
    space = {"f1": [0.2, 0.9, 0.5], "epochs": 1}
    results = _sweep(space, tmp_path / "max", metric="val_f1", mode="max").run()
    assert [row["config"]["f1"] for row in results] == [0.9, 0.5, 0.2]
    assert results.best["score"] == 0.9 and results.mode == "max"
    assert SweepResults.load(tmp_path / "max").mode == "max"
    lowest = _sweep(space, tmp_path / "min", metric="val_f1", mode="min").run()
    assert [row["config"]["f1"] for row in lowest] == [0.2, 0.5, 0.9]
    history = {"val_f1": [0.3, 0.8, 0.6]}
    assert history_metrics(history, "val_f1", mode="max")["score"] == 0.8
    assert history_metrics(history, "val_f1", mode="min")["score"] == 0.3
    with pytest.raises(ValueError, match="mode must be"):
        _sweep(space, tmp_path / "bad", metric="val_f1", mode="up")


def test_the_cli_takes_mode_and_says_which_way_it_ranks(tmp_path, capsys):
    argv = ["--param", "f1=0.2,0.9", "--epochs", "1", "--metric", "val_f1", "--mode", "max",
            "--workers", "1", "--no-plots", "--out", str(tmp_path)]
    assert _cli(argv) == 0
    out = capsys.readouterr().out
    assert "ranked by highest val_f1" in out
    assert SweepResults.load(tmp_path).best["config"]["f1"] == 0.9


# --------------------------------------------------------------------------- unknown metric
def test_an_unknown_metric_stops_the_sweep_after_the_first_trial_naming_the_keys(tmp_path):
    space = {"f1": [0.2, 0.9], "epochs": 1}
    with pytest.raises(SweepMetricError, match=r"'val_acc'.*loss, val_accuracy, val_f1"):
        _sweep(space, tmp_path, metric="val_acc").run()
    assert len(SweepResults.load(tmp_path)) == 1  # the finished trial is kept
    # a rerun with a metric the trials record finishes the sweep, the kept trial reused
    assert len(_sweep(space, tmp_path, metric="val_f1", mode="max").run()) == 2
    with pytest.raises(SweepMetricError, match="val_acc"):  # refused before any training
        _sweep(space, tmp_path, metric="val_acc").run()


def test_the_cli_reports_an_unknown_metric_as_an_error_line(tmp_path, capsys):
    argv = ["--param", "f1=0.2", "--epochs", "1", "--metric", "val_acc", "--workers", "1",
            "--no-plots", "--out", str(tmp_path)]
    assert _cli(argv) == 2
    assert "error: the sweep ranks trials by metric 'val_acc'" in capsys.readouterr().out


def test_failed_trials_do_not_trip_the_metric_check(tmp_path):
    results = _sweep([{"f1": 0.1, "fail": True}, {"f1": 0.3}], tmp_path, epochs=1,
                     trial_fn=failing_trial, metric="val_f1").run()
    assert [row["status"] for row in results] == ["ok", "failed"]


# --------------------------------------------------------------------------- trial outputs
def test_a_history_of_numpy_arrays_is_accepted():
    ok = execute_trial(numpy_trial, {}, 3)
    assert ok["status"] == "ok", ok["error"]
    assert ok["history"]["val_accuracy"] == [0.5, 0.6, 0.7]
    nan = execute_trial(numpy_trial, {"nan": True}, 3)
    assert nan["status"] == "diverged" and "at epoch 3" in nan["error"]


# --------------------------------------------------------------------------- halving settings
def test_impossible_halving_settings_fail_when_the_sweep_is_made(tmp_path, capsys):
    with pytest.raises(ValueError, match="min_epochs=4"):
        _sweep({"f1": [0.1, 0.2], "epochs": 2}, tmp_path, halving=Halving(min_epochs=4))
    argv = ["--param", "f1=0.1,0.2", "--epochs", "2", "--halving", "--min-epochs", "4",
            "--workers", "1", "--no-plots", "--out", str(tmp_path)]
    assert _cli(argv) == 2
    assert "error: halving needs at least min_epochs=4" in capsys.readouterr().out


def test_the_first_rung_trains_min_epochs(tmp_path):
    results = _sweep({"f1": [0.1, 0.2, 0.3], "epochs": 9}, tmp_path, metric="val_f1",
                     mode="max", halving=Halving(eta=3, min_epochs=2)).run()
    assert results.halving["rungs"] == [2, 6, 9]
    assert [row["epochs"] for row in results] == [9, 2, 2]


# --------------------------------------------------------------------------- search spaces
def test_arrays_and_ranges_are_lists_of_values():
    space = SearchSpace({"lr": np.logspace(-4, -2, 3), "units": range(1, 4),
                         "momentum": np.float64(0.9), "decay": np.array(0.5), "epochs": 1})
    assert space.params["lr"].values == pytest.approx([1e-4, 1e-3, 1e-2])
    assert all(type(v) is float for v in space.params["lr"].values)
    assert space.params["units"].values == [1, 2, 3]
    assert space.fixed == {"momentum": 0.9, "decay": 0.5, "epochs": 1}
    assert len(space.grid()) == 9
    with pytest.raises(TypeError, match="'grid'.*1-D.*shape \\(2, 2\\)"):
        SearchSpace({"grid": np.zeros((2, 2))})


# --------------------------------------------------------------------------- plots
@pytest.fixture
def drawn(monkeypatch):
    """The figures report.plot_params would save, kept instead of written."""
    pytest.importorskip("matplotlib")
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig))
    return figures


def _row(value, score, status="ok", name="x"):
    return {"trial_id": f"{name}{value!r}", "status": status, "config": {name: value},
            "score": score}


def _failed_marks(figure):
    return [c for c in figure.axes[0].collections if c.get_label() == "diverged/failed"]


def test_failed_trials_are_drawn_at_the_worst_end_of_the_metric(drawn):
    rows = [_row(1, 0.3), _row(2, 0.5), _row(3, None, "failed")]
    report.plot_params(SweepResults(rows, ["x"], metric="val_loss"), "p.png")
    y = _failed_marks(drawn[-1])[0].get_offsets()[0][1]
    assert y > 0.5  # above the worst loss, not at the best end (0)
    report.plot_params(SweepResults(rows, ["x"], metric="val_f1", mode="max"), "p.png")
    assert _failed_marks(drawn[-1])[0].get_offsets()[0][1] <= 0.3


def test_list_dict_and_bool_values_get_their_own_ticks(drawn):
    rows = [_row([32], 0.5, name="hidden"), _row([64, 32], 0.6, name="hidden"),
            _row({"step": 1}, 0.7, name="hidden"), _row(1, 0.4, name="hidden"),
            _row(True, 0.8, name="hidden"), _row([32], None, "failed", name="hidden")]
    report.plot_params(SweepResults(rows, ["hidden"]), "p.png")
    labels = [t.get_text() for t in drawn[-1].axes[0].get_xticklabels()]
    assert labels == ["[32]", "[64,32]", '{"step":1}', "1", "True"]
