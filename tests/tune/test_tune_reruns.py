"""Sweeps run again in the same folder, and trials that fail part-way: what is kept.

The fake trials here do not train: ``curve_trial`` returns the validation curve its
config spells out, so each test states the numbers it ranks by.
"""
import csv
import json
import os
from pathlib import Path

import pytest

from minigrad.tune import Halving, Sweep, execute_trial
from minigrad.tune.executors import Sequential, _crash_outcome
from tests.helpers.sweep import quiet_sweep


def curve_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """``val_accuracy`` is ``config["acc"][:epochs]`` (``val_loss`` is ``config["vloss"]``
    or 1 - acc); raises once asked for more than ``config["fails_after"]`` epochs, and
    logs each call as a JSON line to ``config["log"]``."""
    if config.get("log"):
        with open(config["log"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"name": config["name"], "epochs": epochs,
                                "resumed": resume_from is not None}) + "\n")
    if epochs > config.get("fails_after", epochs):
        raise RuntimeError(f"out of memory at epoch {config['fails_after'] + 1}")
    if config.get("exit"):
        raise SystemExit(config["exit"])
    acc = config["acc"][:epochs]
    vloss = config.get("vloss", [round(1 - a, 6) for a in config["acc"]])[:epochs]
    if checkpoint_path is not None:
        Path(checkpoint_path).parent.mkdir(parents=True, exist_ok=True)
        Path(checkpoint_path).write_text(json.dumps({"epochs": epochs}))
    return {"history": {"loss": [1.0] * epochs, "val_accuracy": acc, "val_loss": vloss,
                        "seconds": [0.01] * epochs}}


def _sweep(space, out, trial_fn=curve_trial, **kwargs):
    return quiet_sweep(space, out, trial_fn, **kwargs)


def _calls(log):
    log = Path(log)
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _names(results):
    return [row["config"]["name"] for row in results]


#: A late bloomer: worst after one epoch, best from the third on.
LATE_BLOOMERS = [{"name": "fast", "acc": [0.6, 0.62, 0.63, 0.64, 0.65, 0.66, 0.66, 0.66, 0.66]},
                 {"name": "slow", "acc": [0.3, 0.7, 0.9, 0.92, 0.95, 0.96, 0.97, 0.98, 0.99]},
                 {"name": "mid", "acc": [0.5, 0.55, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]}]


def test_a_rerun_with_another_metric_ranks_the_recorded_trials_by_it(tmp_path):
    log = tmp_path / "calls.jsonl"
    configs = [{"name": "a", "acc": [0.5, 0.9], "vloss": [0.3, 0.2], "log": str(log)},
               {"name": "b", "acc": [0.6, 0.7], "vloss": [0.1, 0.15], "log": str(log)}]
    assert _names(_sweep(configs, tmp_path / "out", epochs=2).run()) == ["a", "b"]
    again = _sweep(configs, tmp_path / "out", epochs=2, metric="val_loss").run()
    assert len(_calls(log)) == 2  # nothing trained again
    assert _names(again) == ["b", "a"]
    assert [(row["score"], row["best_epoch"]) for row in again] == [(0.1, 1), (0.2, 2)]
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [float(row["best_val_loss"]) for row in table] == [0.1, 0.2]
    stored = json.loads((tmp_path / "out" / "results.json").read_text())
    assert stored["metric"] == "val_loss" and stored["trials"][0]["score"] == 0.1


def test_a_halving_rerun_of_a_plain_sweep_ranks_by_what_the_trials_trained(tmp_path):
    plain = _sweep(LATE_BLOOMERS, tmp_path, epochs=9).run()
    assert _names(plain) == ["slow", "fast", "mid"]
    halved = _sweep(LATE_BLOOMERS, tmp_path, epochs=9, halving=Halving(eta=3)).run()
    # every trial trained all 9 epochs (in the first sweep): the promoted one does not
    # outrank the better ones for having been promoted in this sweep
    assert _names(halved) == ["slow", "fast", "mid"]
    assert [row["rung"] for row in halved] == [2, 2, 2]


def test_a_plain_rerun_of_a_halving_sweep_forgets_its_rungs(tmp_path):
    halved = _sweep(LATE_BLOOMERS, tmp_path, epochs=9, halving=Halving(eta=3)).run()
    assert [(row["config"]["name"], row["rung"], row["epochs"]) for row in halved] == [
        ("fast", 2, 9), ("mid", 0, 1), ("slow", 0, 1)]
    plain = _sweep(LATE_BLOOMERS, tmp_path, epochs=9).run()
    assert _names(plain) == ["slow", "fast", "mid"]
    assert [row["rung"] for row in plain] == [None, None, None]


def test_a_finished_halving_sweep_runs_nothing_again_after_a_promoted_trial_failed(tmp_path):
    log = tmp_path / "calls.jsonl"
    space = [{"name": name, "acc": [q] * 4, "log": str(log)}
             for name, q in (("a", 0.8), ("b", 0.9), ("c", 0.95), ("d", 0.7))]
    space[2]["fails_after"] = 1  # the best at rung 1 runs out of memory at rung 2
    first = _sweep(space, tmp_path / "out", epochs=4, halving=Halving(eta=2)).run()
    assert [(c["name"], c["epochs"]) for c in _calls(log)] == [
        ("a", 1), ("b", 1), ("c", 1), ("d", 1), ("b", 2), ("c", 2), ("b", 4)]
    failed = first[-1]
    assert failed["config"]["name"] == "c" and failed["status"] == "failed"
    assert failed["epochs"] == 1 and failed["history"]["val_accuracy"] == [0.95]
    again = _sweep(space, tmp_path / "out", epochs=4, halving=Halving(eta=2)).run()
    assert len(_calls(log)) == 7  # a no-op: "a" is not promoted in c's place
    assert [(r["trial_id"], r["epochs"], r["rung"], r["status"]) for r in again] == \
        [(r["trial_id"], r["epochs"], r["rung"], r["status"]) for r in first]


def test_a_survivor_retrained_without_checkpoints_that_fails_keeps_its_first_rung(tmp_path):
    space = [{"name": "a", "acc": [0.9, 0.9], "fails_after": 1}, {"name": "b", "acc": [0.5] * 2}]
    results = _sweep(space, tmp_path, epochs=2, halving=Halving(eta=2),
                     checkpoints=False).run()
    row = next(r for r in results if r["config"]["name"] == "a")
    assert row["status"] == "failed" and "out of memory" in row["error"]
    assert row["history"]["val_accuracy"] == [0.9] and row["score"] == 0.9


class _WorkerDiesOnResume(Sequential):
    """The sequential executor, except that the worker process dies under every resumed
    trial (as LocalPool reports it: a failed outcome without a history)."""

    def run(self, trial_fn, tasks):
        for task in tasks:
            if task.checkpoint_path and os.path.exists(task.checkpoint_path):
                yield task, _crash_outcome(task, "the worker process died twice")
            else:
                yield from super().run(trial_fn, [task])


def test_a_survivor_whose_worker_dies_on_resume_keeps_its_earlier_rungs(tmp_path, monkeypatch):
    monkeypatch.setattr(Sweep, "_executor", lambda self: _WorkerDiesOnResume())
    space = [{"name": "a", "acc": [0.9, 0.9]}, {"name": "b", "acc": [0.5, 0.5]}]
    results = _sweep(space, tmp_path, epochs=2, halving=Halving(eta=2)).run()
    row = next(r for r in results if r["config"]["name"] == "a")
    assert row["status"] == "failed" and "died twice" in row["error"]
    assert row["history"]["val_accuracy"] == [0.9] and row["epochs"] == 1


def test_halving_savings_count_the_epochs_retrained_without_checkpoints(tmp_path):
    space = [{"name": str(q), "acc": [q] * 9} for q in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7,
                                                         0.8, 0.9)]
    kept = _sweep(space, tmp_path / "kept", epochs=9, halving=Halving(eta=3)).run()
    assert kept.halving["epochs_run"] == 9 + 3 * 2 + 6  # survivors continue where they were
    retrained = _sweep(space, tmp_path / "retrained", epochs=9, halving=Halving(eta=3),
                       checkpoints=False).run()
    # 9 trials x 1 epoch, 3 retrained from scratch to 3, then one from scratch to 9
    assert retrained.halving["epochs_run"] == 9 + 3 * 3 + 9
    assert retrained.halving["fraction_saved"] == pytest.approx(1 - 27 / 81)
    assert "trained 27 epochs instead of 81" in retrained.summary()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_trial_calling_sys_exit_is_a_failure_and_the_sweep_goes_on(tmp_path, workers):
    space = [{"name": "a", "acc": [0.5]}, {"name": "quits", "acc": [0.9], "exit": 3},
             {"name": "c", "acc": [0.6]}]
    results = _sweep(space, tmp_path, epochs=1, workers=workers).run()
    assert [(r["config"]["name"], r["status"]) for r in results] == [
        ("c", "ok"), ("a", "ok"), ("quits", "failed")]
    assert results[-1]["error"] == "SystemExit: 3"


def test_ctrl_c_in_a_trial_still_stops_the_sweep():
    def interrupted(config, epochs, resume_from=None, checkpoint_path=None):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        execute_trial(interrupted, {}, 1)
