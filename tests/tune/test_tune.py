"""Hyperparameter sweeps (minigrad.tune) with cheap fake trial functions.

The fake trials are module-level so that spawned workers (local pool, Dask) can
import them. ``fake_trial`` simulates training: a deterministic accuracy curve
whose ceiling depends on the config, checkpoints as JSON, and a log of its calls
(one JSON line per call, in the file named by ``config["log"]``).
"""
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigrad.io import atomic_write_json
from minigrad.tune import (Halving, SearchSpace, Sweep, SweepResults, choice, core_shares,
                           execute_trial, loguniform, trial_id, uniform)
from minigrad.tune.cli import add_sweep_arguments, parse_values, run_sweep_cli, space_from_args
from minigrad.tune.space import Choice, LogUniform, Uniform
from tests.helpers.repo import ROOT, shared_data
from tests.helpers.sweep import quiet_sweep

VOLATILE = {"seconds", "images_per_second", "worker", "finished_at", "epoch_seconds",
            "traceback", "resumed"}


# --------------------------------------------------------------------------- fakes
def quality(config):
    """The accuracy a fake trial converges to: best at lr=1e-2, relu a little better."""
    lr = float(config.get("lr", 1e-3))
    peak = 0.55 + 0.4 * math.exp(-(math.log10(lr) + 2.0) ** 2)
    bonus = {"relu": 0.03, "tanh": 0.01}.get(config.get("activation"), 0.0)
    return peak + bonus + 0.001 * float(config.get("x", 0))


def _log_call(config, **info):
    if config.get("log"):
        with open(config["log"], "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": config.get("x", config.get("lr")), **info}) + "\n")


def fake_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """Simulated training: val accuracy q * (1 - 0.6**epoch); NaN loss for lr >= 1."""
    _log_call(config, epochs=epochs, resume_from=resume_from, checkpoint_path=checkpoint_path)
    if config.get("fail"):
        raise ValueError(f"bad setting fail={config['fail']}")
    if config.get("overflow"):
        raise FloatingPointError("training stopped: the loss became inf at epoch 1")
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": [], "seconds": []}
    if resume_from is not None:
        with open(resume_from, encoding="utf-8") as f:
            history = json.load(f)
    q, lr = quality(config), float(config.get("lr", 1e-3))
    for epoch in range(len(history["loss"]), epochs):
        acc = q * (1 - 0.6 ** (epoch + 1))
        history["loss"].append(math.nan if lr >= 1 else 1.5 - acc)
        history["accuracy"].append(acc + 0.02)
        history["val_loss"].append(1.6 - acc)
        history["val_accuracy"].append(acc)
        history["seconds"].append(0.01)
        if epoch == 1 and os.environ.get("FAKE_TRIAL_DIE_X") == str(config.get("x")):
            os._exit(3)  # killed in its second epoch: no result, no row
        if checkpoint_path is not None:
            atomic_write_json(checkpoint_path, history)
    return {"history": history, "images_per_second": 1000.0}


def interrupted_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """Ctrl-C arrives during the trial with x == 2 (unless FAKE_TRIAL_NO_INTERRUPT is set)."""
    if config["x"] == 2 and not os.environ.get("FAKE_TRIAL_NO_INTERRUPT"):
        raise KeyboardInterrupt
    return fake_trial(config, epochs, resume_from, checkpoint_path)


def crashing_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """Kills its worker process for config x == 2 (as the OOM killer would)."""
    if config["x"] == 2:
        os._exit(9)
    return fake_trial(config, epochs, resume_from, checkpoint_path)


def worker_report_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """Logs the worker's affinity and thread settings, then trains like fake_trial.

    With ``config["barrier"]`` (a folder), each call first waits until two different
    processes have started a trial, so that both workers of a pool surely take part.
    """
    import time
    import numba
    if config.get("barrier"):
        Path(config["barrier"], str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(os.listdir(config["barrier"])) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    _log_call(config, affinity=sorted(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else None, pid=os.getpid(),
        numba_threads=numba.config.NUMBA_NUM_THREADS, numba_active=numba.get_num_threads(),
        env={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "NUMBA_NUM_THREADS")})
    return fake_trial({k: v for k, v in config.items() if k not in ("log", "barrier")}, epochs)


def _calls(path):
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _stable(rows):
    """Rows without timings and process names: what must match between executors."""
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def _strict_json(path):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(Path(path).read_text(), parse_constant=reject)


# --------------------------------------------------------------------------- spaces
def test_grid_expands_every_combination_in_order():
    space = SearchSpace({"optimizer": ["adam", "sgd"], "lr": [1e-2, 1e-3, 1e-4],
                         "activation": "relu", "epochs": 5})
    configs = space.expand("grid")
    assert space.size == 6 and len(configs) == 6
    assert space.varied == ["optimizer", "lr"]
    assert space.fixed == {"activation": "relu", "epochs": 5}
    assert [(c["optimizer"], c["lr"]) for c in configs] == [
        ("adam", 1e-2), ("adam", 1e-3), ("adam", 1e-4), ("sgd", 1e-2), ("sgd", 1e-3),
        ("sgd", 1e-4)]
    assert all(list(c) == ["optimizer", "lr", "activation", "epochs"] for c in configs)
    assert space.expand("grid") == configs


def test_trial_id_is_a_hash_of_the_sorted_config():
    config = {"lr": 0.001, "optimizer": "adam", "epochs": 5}
    text = '{"epochs":5,"lr":0.001,"optimizer":"adam"}'
    assert trial_id(config) == hashlib.sha1(text.encode()).hexdigest()[:10]
    assert trial_id(dict(reversed(list(config.items())))) == trial_id(config)
    assert trial_id({**config, "lr": 0.01}) != trial_id(config)
    with pytest.raises(TypeError, match="JSON"):
        trial_id({"lr": math.nan})


def test_random_search_is_seeded_distinct_and_within_ranges():
    space = SearchSpace({"optimizer": choice(["adam", "sgd", "rmsprop"]),
                         "lr": loguniform(1e-4, 1e-1), "momentum": uniform(0.5, 0.99),
                         "epochs": 3})
    a = space.expand("random", trials=40, seed=7)
    assert a == space.expand("random", trials=40, seed=7)
    assert a != space.expand("random", trials=40, seed=8)
    assert len({trial_id(c) for c in a}) == 40
    for c in a:
        assert c["optimizer"] in ("adam", "sgd", "rmsprop") and c["epochs"] == 3
        assert 1e-4 <= c["lr"] <= 1e-1 and 0.5 <= c["momentum"] <= 0.99
        assert float(f"{c['lr']:.3g}") == c["lr"]  # three significant digits
    assert space.size is None and space.varied == ["optimizer", "lr", "momentum"]


def test_loguniform_is_uniform_in_the_logarithm():
    rng = np.random.default_rng(0)
    draws = np.array([LogUniform(1e-5, 1e-1, digits=None).sample(rng) for _ in range(4000)])
    # each decade holds a quarter of the draws (a plain uniform would put 90% in the top one)
    decades = np.histogram(np.log10(draws), bins=[-5, -4, -3, -2, -1])[0] / len(draws)
    assert np.all(np.abs(decades - 0.25) < 0.03)
    uniform_draws = np.array([Uniform(2.0, 4.0, digits=None).sample(rng) for _ in range(4000)])
    assert abs(uniform_draws.mean() - 3.0) < 0.03


def test_random_search_of_a_finite_space_and_bad_requests():
    space = SearchSpace({"optimizer": ["adam", "sgd"], "lr": [1e-2, 1e-3, 1e-4]})
    every = space.expand("random", trials=6, seed=0)
    assert sorted(map(trial_id, every)) == sorted(map(trial_id, space.expand("grid")))
    with pytest.raises(ValueError, match="only 6 configurations"):
        space.expand("random", trials=7)
    with pytest.raises(ValueError, match="grid search cannot enumerate lr"):
        SearchSpace({"lr": loguniform(1e-4, 1e-2)}).expand("grid")
    with pytest.raises(ValueError, match="trials=N"):
        space.expand("random")
    with pytest.raises(ValueError, match="kind must be"):
        space.expand("bayesian")
    with pytest.raises(ValueError, match="empty list"):
        SearchSpace({"lr": []})
    with pytest.raises(ValueError, match="0 < low < high"):
        loguniform(0, 1)
    with pytest.raises(TypeError, match="JSON"):
        SearchSpace({"model": object()})


def test_halving_rungs():
    assert Halving(eta=3).rungs(9) == [1, 3, 9]
    # ASHA's rungs (Ray Tune's grace period x reduction factor**k), then the last epoch
    assert Halving(eta=3).rungs(10) == [1, 3, 9, 10]
    assert Halving(eta=3).rungs(5) == [1, 3, 5]
    assert Halving(eta=3, min_epochs=2).rungs(9) == [2, 6, 9]  # the first rung is min_epochs
    assert Halving(eta=3, min_epochs=5).rungs(5) == [5]
    assert Halving(eta=2).rungs(4) == [1, 2, 4]
    assert Halving(eta=2, min_epochs=2).rungs(8) == [2, 4, 8]
    assert Halving(eta=3).rungs(1) == [1]
    assert Halving(eta=3, max_epochs=27).rungs(5) == [1, 3, 9, 27]
    with pytest.raises(ValueError, match="eta"):
        Halving(eta=1)
    with pytest.raises(ValueError, match="min_epochs"):
        Halving(min_epochs=4).rungs(2)


def test_core_shares_split_cores_evenly():
    assert core_shares(2, [0, 1, 2, 3]) == [[0, 1], [2, 3]]
    assert core_shares(3, [0, 1, 2, 3, 4, 5, 6]) == [[0, 1], [2, 3], [4, 5]]
    assert core_shares(3, [4, 5]) == [[4], [5], [4]]
    with pytest.raises(ValueError):
        core_shares(0, [0])
    from minigrad.tune import LocalPool, available_cores
    pool = LocalPool()  # nothing starts until it runs
    assert pool.workers == len(available_cores()) and pool.threads == 1
    assert LocalPool(workers=1, cores=[0, 1, 2, 3]).threads == 4


# --------------------------------------------------------------------------- one trial
def test_execute_trial_outcomes(tmp_path):
    from minigrad.train import History
    ok = execute_trial(fake_trial, {"lr": 1e-2}, 3)
    assert ok["status"] == "ok" and len(ok["history"]["val_accuracy"]) == 3
    assert ok["images_per_second"] == 1000.0 and ok["seconds"] >= 0
    nan = execute_trial(fake_trial, {"lr": 1.0}, 2)
    assert nan["status"] == "diverged" and "epoch 1" in nan["error"]
    assert nan["history"]["loss"] == [None, None]  # strict JSON: NaN stored as null
    raised = execute_trial(fake_trial, {"overflow": True}, 2)
    assert raised["status"] == "diverged" and "inf" in raised["error"]
    failed = execute_trial(fake_trial, {"fail": "yes"}, 2)
    assert failed["status"] == "failed"
    assert failed["error"] == "ValueError: bad setting fail=yes"
    assert "fake_trial" in failed["traceback"]

    def returns_history(config, epochs, resume_from=None, checkpoint_path=None):
        h = History()
        h.append(0, {"loss": 0.5, "val_accuracy": 0.75})
        return {"history": h}
    assert execute_trial(returns_history, {}, 1)["history"]["val_accuracy"] == [0.75]

    def returns_list(config, epochs, resume_from=None, checkpoint_path=None):
        return [0.5]
    assert "must return a dict" in execute_trial(returns_list, {}, 1)["error"]

    ckpt = tmp_path / "ckpt.npz"
    atomic_write_json(ckpt, {"loss": [1.0], "accuracy": [0.5], "val_loss": [1.0],
                             "val_accuracy": [0.4], "seconds": [0.01]})
    resumed = execute_trial(fake_trial, {"lr": 1e-2}, 2, checkpoint_path=str(ckpt))
    assert resumed["resumed"] and resumed["history"]["val_accuracy"][0] == 0.4


# --------------------------------------------------------------------------- sweeps
def _sweep(space, out, trial_fn=fake_trial, **kwargs):
    return quiet_sweep(space, out, trial_fn, **kwargs)


def test_sweep_ranks_trials_and_writes_complete_files(tmp_path):
    log = str(tmp_path / "calls.jsonl")
    space = {"lr": [1e-3, 1e-2, 1e-1], "activation": ["relu", "tanh"], "epochs": 3, "log": log}
    results = _sweep(space, tmp_path / "out").run()
    assert len(results) == 6 and results.varied == ["lr", "activation"]
    expected = sorted(SearchSpace(space).expand(), key=lambda c: -quality(c))
    assert [r["config"]["lr"] for r in results] == [c["lr"] for c in expected]
    assert [r["config"]["activation"] for r in results] == [c["activation"] for c in expected]
    best = results.best
    assert best["config"] == {"lr": 1e-2, "activation": "relu", "epochs": 3, "log": log,
                              "seed": 0}
    assert best["best_val_accuracy"] == pytest.approx(quality(best["config"]) * (1 - 0.6 ** 3))
    assert best["best_epoch"] == 3 and best["epochs"] == 3 and best["rank"] == 1

    data = _strict_json(tmp_path / "out" / "results.json")
    assert [r["trial_id"] for r in data["trials"]] == [r["trial_id"] for r in results]
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [row["trial_id"] for row in table] == [r["trial_id"] for r in results]
    assert [int(row["rank"]) for row in table] == list(range(1, 7))
    for row, full in zip(table, results):
        assert row["status"] == "ok" and float(row["lr"]) == full["config"]["lr"]
        assert float(row["best_val_accuracy"]) == full["best_val_accuracy"]
        assert int(row["epochs"]) == 3 and row["error"] == ""
    assert "rank" in results.table() and "best val acc" in results.table()
    assert f"Best: trial {best['trial_id']}" in results.summary()
    loaded = SweepResults.load(tmp_path / "out")
    assert [r["trial_id"] for r in loaded] == [r["trial_id"] for r in results]


def test_diverged_and_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    configs = [{"lr": 1e-2}, {"lr": 1.0}, {"lr": 1e-3, "fail": "yes"},
               {"lr": 1e-3, "overflow": True}, {"lr": 1e-3}]
    printed = []
    results = _sweep(configs, tmp_path, epochs=2, verbose=1, print_fn=printed.append).run()
    status = {(r["config"]["lr"], r["config"].get("fail"), r["config"].get("overflow")):
              r["status"] for r in results}
    assert status == {(1e-2, None, None): "ok", (1.0, None, None): "diverged",
                      (1e-3, "yes", None): "failed", (1e-3, None, True): "diverged",
                      (1e-3, None, None): "ok"}
    assert [r["status"] for r in results] == ["ok", "ok", "diverged", "diverged", "failed"]
    failed = results[-1]
    assert failed["error"] == "ValueError: bad setting fail=yes" and failed["epochs"] == 0
    assert "NaN or infinite at epoch 1" in results[2]["error"] + results[3]["error"]
    text = "\n".join(printed)
    assert "failed: ValueError: bad setting fail=yes" in text and "2 ok" in text
    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[-1]["error"] == "ValueError: bad setting fail=yes"
    assert results.counts() == {"ok": 2, "diverged": 2, "failed": 1}


def test_restart_skips_finished_trials(tmp_path):
    log = tmp_path / "calls.jsonl"
    first = {"x": [1, 2], "epochs": 2, "log": str(log)}
    _sweep(first, tmp_path / "out").run()
    assert len(_calls(log)) == 2
    _sweep(first, tmp_path / "out").run()
    assert len(_calls(log)) == 2  # nothing ran again
    bigger = {"x": [1, 2, 3, 4], "epochs": 2, "log": str(log)}
    results = _sweep(bigger, tmp_path / "out").run()
    assert [c["id"] for c in _calls(log)] == [1, 2, 3, 4]
    assert len(results) == 4 and all(r["status"] == "ok" for r in results)
    # a trial recorded as failed is skipped, unless retry_failed
    failing = [{"x": 5, "fail": "once", "log": str(log)}]
    _sweep(failing, tmp_path / "out", epochs=2).run()
    _sweep(failing, tmp_path / "out", epochs=2).run()
    assert [c["id"] for c in _calls(log)].count(5) == 1
    _sweep(failing, tmp_path / "out", epochs=2, retry_failed=True).run()
    assert [c["id"] for c in _calls(log)].count(5) == 2
    # rows of the earlier sweeps stay in the file, outside this sweep's ranking
    data = _strict_json(tmp_path / "out" / "results.json")
    assert len(data["trials"]) == 1 and len(data["other_trials"]) == 4


def test_results_are_valid_after_a_kill_mid_trial_and_the_rerun_completes(tmp_path):
    out, log = tmp_path / "out", tmp_path / "calls.jsonl"
    space = {"x": [1, 2, 3], "epochs": 3, "log": str(log)}
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
              f"from tests.tune import test_tune as t; "
              f"from minigrad.tune import Sweep; "
              f"Sweep({space!r}, t.fake_trial, {str(out)!r}, workers=1, verbose=0, "
              f"plots=False).run()")
    env = dict(os.environ, FAKE_TRIAL_DIE_X="3")  # trial x=3 is killed in its 2nd epoch
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    data = _strict_json(out / "results.json")
    assert [r["config"]["x"] for r in data["trials"]] == [2, 1]  # complete rows only
    for row in data["trials"]:
        assert row["status"] == "ok" and row["epochs"] == 3 and row["error"] is None
        assert len(row["history"]["val_accuracy"]) == 3 and row["best_val_accuracy"] > 0
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["x"]) for r in table] == [2, 1] and all(r["status"] == "ok" for r in table)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    killed = trial_id({**space, "x": 3, "seed": 0})
    checkpoint = out / "trials" / killed / "checkpoint.npz"
    assert len(json.loads(checkpoint.read_text())["loss"]) == 1  # its first epoch was saved

    results = _sweep(space, out).run()  # the rerun: only the killed trial, resumed
    assert [c["id"] for c in _calls(log)] == [1, 2, 3, 3]
    assert _calls(log)[-1]["resume_from"] == str(checkpoint)
    assert [r["config"]["x"] for r in results] == [3, 2, 1]
    uninterrupted = fake_trial({**space, "x": 3, "seed": 0, "log": None}, 3)["history"]
    assert results[0]["history"]["val_accuracy"] == uninterrupted["val_accuracy"]


def test_halving_keeps_the_best_and_continues_them_from_checkpoints(tmp_path):
    log = tmp_path / "calls.jsonl"
    lrs = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1e-4, 2e-2]
    space = {"lr": lrs, "epochs": 9, "log": str(log)}
    results = _sweep(space, tmp_path / "out", halving=Halving(eta=3)).run()
    configs = SearchSpace(space).expand()
    by_quality = sorted(configs, key=quality, reverse=True)
    calls = _calls(log)
    assert [c["epochs"] for c in calls] == [1] * 9 + [3] * 3 + [9]
    assert all(c["resume_from"] is None for c in calls[:9])
    rung2 = {c["id"] for c in calls[9:12]}
    assert rung2 == {c["lr"] for c in by_quality[:3]}
    assert calls[12]["id"] == by_quality[0]["lr"]
    for call in calls[9:]:  # survivors continue from their own checkpoints
        assert call["resume_from"] == call["checkpoint_path"]
        assert call["resume_from"].endswith("checkpoint.npz")
    assert [r["config"]["lr"] for r in results][:3] == [c["lr"] for c in by_quality[:3]]
    assert [r["epochs"] for r in results] == [9, 3, 3] + [1] * 6
    assert [r["rung"] for r in results] == [2, 1, 1] + [0] * 6
    stats = results.halving
    assert stats["epochs_run"] == 6 * 1 + 2 * 3 + 9 and stats["epochs_full"] == 81
    assert stats["fraction_saved"] == pytest.approx(1 - 21 / 81)
    assert "trained 21 epochs instead of 81" in results.summary()
    # a restart with the same settings runs nothing more and ranks the same
    again = _sweep(space, tmp_path / "out", halving=Halving(eta=3)).run()
    assert len(_calls(log)) == 13
    assert _stable(again.rows) == _stable(results.rows)


def test_halving_never_promotes_diverged_trials(tmp_path):
    space = {"lr": [1e-2, 1.0, 3.0, 1e-3], "epochs": 4}
    results = _sweep(space, tmp_path, halving=Halving(eta=2)).run()
    assert [r["config"]["lr"] for r in results][:2] == [1e-2, 1e-3]
    assert [r["epochs"] for r in results][:2] == [4, 2]
    assert {r["status"] for r in results[2:]} == {"diverged"}
    with pytest.raises(ValueError, match="do not vary 'epochs'"):
        _sweep({"lr": [1e-2], "epochs": [2, 4]}, tmp_path / "b", halving=True)


def test_sweep_input_errors(tmp_path):
    with pytest.raises(ValueError, match="epochs"):
        _sweep({"lr": [1e-2]}, tmp_path)
    with pytest.raises(ValueError, match="more than once"):
        _sweep([{"lr": 1}, {"lr": 1}], tmp_path, epochs=1)
    with pytest.raises(TypeError, match="module level"):
        Sweep({"lr": [1e-2], "epochs": 1}, lambda *a, **k: {}, tmp_path, workers=2,
              verbose=0).run()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read as sweep results"):
        _sweep({"lr": [1e-2], "epochs": 1}, tmp_path / "bad").run()


# --------------------------------------------------------------------------- executors
def test_local_pool_pins_each_worker_to_its_share_of_the_cores(tmp_path):
    pytest.importorskip("numba", reason="the workers report Numba's thread settings")
    log = tmp_path / "calls.jsonl"
    before = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    (tmp_path / "barrier").mkdir()
    results = _sweep({"x": [1, 2, 3, 4], "epochs": 1, "log": str(log),
                      "barrier": str(tmp_path / "barrier")}, tmp_path / "out",
                     workers=2, trial_fn=worker_report_trial).run()
    assert all(r["status"] == "ok" for r in results)
    calls = _calls(log)
    assert len(calls) == 4  # one logged call per configuration, so the loop below checks each
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    shares = core_shares(2, cores) if cores else None
    for call in calls:
        threads = len(shares[0]) if shares else None
        assert call["env"] == {k: str(threads) for k in call["env"]}
        assert call["numba_threads"] == call["numba_active"] == threads
        if shares:
            assert call["affinity"] in shares
    if cores and len(cores) >= 2:  # two workers, two different shares
        by_pid = {c["pid"]: tuple(c["affinity"]) for c in calls}
        assert len(set(by_pid.values())) == len(by_pid) == 2
    assert {k: os.environ.get(k) for k in before} == before  # the parent's env is restored


def test_local_pool_survives_a_worker_that_dies(tmp_path):
    results = _sweep({"x": [1, 2, 3, 4], "epochs": 1}, tmp_path, workers=2,
                     trial_fn=crashing_trial).run()
    status = {r["config"]["x"]: r["status"] for r in results}
    assert status == {1: "ok", 2: "failed", 3: "ok", 4: "ok"}
    assert "worker process died twice" in results[-1]["error"]


def test_local_pool_gives_the_same_table_as_sequential(tmp_path):
    space = {"lr": [1e-3, 1e-2, 1.0], "activation": ["relu", "tanh"], "epochs": 3}
    sequential = _sweep(space, tmp_path / "seq").run()
    pooled = _sweep(space, tmp_path / "pool", workers=2).run()
    assert _stable(pooled.rows) == _stable(sequential.rows)
    halved = _sweep(space, tmp_path / "pool-h", workers=2, halving=Halving(eta=2)).run()
    halved_seq = _sweep(space, tmp_path / "seq-h", halving=Halving(eta=2)).run()
    strip = [{k: v for k, v in r.items() if k != "config"} for r in _stable(halved.rows)]
    strip_seq = [{k: v for k, v in r.items() if k != "config"} for r in _stable(halved_seq.rows)]
    assert strip == strip_seq


def test_dask_local_cluster_gives_the_same_table_as_the_local_pool(tmp_path):
    distributed = pytest.importorskip("distributed")
    space = {"lr": [1e-3, 1e-2, 1.0], "activation": ["relu", "tanh"], "epochs": 3,
             "fail": [None, "x"]}
    pooled = _sweep(space, tmp_path / "pool", workers=2, kind="random", trials=6,
                    seed=3).run()
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        on_dask = _sweep(space, tmp_path / "dask", cluster=cluster.scheduler_address,
                         kind="random", trials=6, seed=3).run()
        halved = _sweep(space, tmp_path / "dask-h", cluster=cluster, kind="random",
                        trials=6, seed=3, halving=Halving(eta=2)).run()
        log = tmp_path / "calls.jsonl"
        _sweep({"x": [1, 2], "epochs": 1, "log": str(log)}, tmp_path / "dask-threads",
               cluster=cluster, trial_fn=worker_report_trial).run()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # two single-threaded workers on this host: each trial gets half the cores for Numba
    assert [c["numba_active"] for c in _calls(log)] == [max(1, cores // 2)] * 2
    assert _stable(on_dask.rows) == _stable(pooled.rows)
    assert {r["status"] for r in on_dask} == {"ok", "diverged", "failed"}
    assert all(r["worker"] for r in on_dask)
    halved_seq = _sweep(space, tmp_path / "seq-h", kind="random", trials=6, seed=3,
                        halving=Halving(eta=2)).run()
    assert [(r["trial_id"], r["epochs"], r["status"]) for r in halved] == \
        [(r["trial_id"], r["epochs"], r["status"]) for r in halved_seq]


def slow_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """fake_trial after a nap of config["sleep"] seconds."""
    import time
    time.sleep(config["sleep"])
    return fake_trial(config, epochs, resume_from, checkpoint_path)


def test_an_interrupted_sweep_leaves_nothing_queued_on_the_users_dask_client(tmp_path):
    import gc
    import time
    distributed = pytest.importorskip("distributed")
    log = tmp_path / "calls.jsonl"

    def ctrl_c_after_the_first_trial(line):
        if line.startswith("[1/"):
            raise KeyboardInterrupt

    def queued(dask_scheduler):
        return [str(key) for key in dask_scheduler.tasks if "minigrad-trial" in str(key)]

    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        sweep = _sweep({"x": [1, 2, 3, 4, 5], "epochs": 1, "sleep": 0.2, "log": str(log)},
                       tmp_path / "out", cluster=client, trial_fn=slow_trial, verbose=1,
                       print_fn=ctrl_c_after_the_first_trial)
        gc.disable()  # the futures must be cancelled, not left for the collector to drop
        try:
            with pytest.raises(KeyboardInterrupt):
                sweep.run()
            deadline = time.monotonic() + 3
            while client.run_on_scheduler(queued) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.run_on_scheduler(queued) == []
        finally:
            gc.enable()
        time.sleep(0.4)  # the trial running at the interrupt ends; no other one starts
        assert len(_calls(log)) <= 2
        assert client.submit(sum, [1, 2]).result() == 3  # the user's client still works


def test_cluster_without_distributed_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"minigrad\[cluster\]"):
        _sweep({"lr": [1e-2], "epochs": 1}, tmp_path, cluster="tcp://127.0.0.1:1").run()


# --------------------------------------------------------------------------- report
def test_plots_are_written_and_optional(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    space = {"lr": [1e-3, 1e-2, 1.0], "activation": ["relu", "tanh"], "epochs": 3}
    printed = []
    _sweep(space, tmp_path / "a", plots=True, verbose=1, print_fn=printed.append).run()
    for name in ("sweep_curves.png", "sweep_params.png"):
        assert (tmp_path / "a" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("sweep_curves.png" in line for line in printed)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    printed.clear()
    results = _sweep(space, tmp_path / "b", plots=True, verbose=1,
                     print_fn=printed.append).run()
    assert len(results) == 6 and not (tmp_path / "b" / "sweep_curves.png").exists()
    assert any("No plots" in line and "minigrad[plot]" in line for line in printed)


# --------------------------------------------------------------------------- CLI
def _parse(argv):
    import argparse
    return add_sweep_arguments(argparse.ArgumentParser()).parse_args(argv)


def test_cli_options_become_a_search_space(tmp_path):
    args = _parse(["--optimizer", "adam,sgd", "--lr", "1e-2,1e-3", "--activation", "relu",
                   "--batch-size", "16,32", "--param", "augment=true,false",
                   "--param", "dropout=0.1..0.5", "--data", str(tmp_path)])
    space = space_from_args(args)
    assert space.params["optimizer"].values == ["adam", "sgd"]
    assert space.params["lr"].values == [1e-2, 1e-3]
    assert space.params["batch_size"].values == [16, 32]
    assert space.params["augment"].values == [True, False]
    assert isinstance(space.params["dropout"], Uniform)
    assert space.fixed == {"activation": "relu", "epochs": 5, "data": str(tmp_path)}
    assert isinstance(parse_values("1e-4..1e-2", float, "lr"), LogUniform)
    assert isinstance(parse_values("1..1000", None, "units"), LogUniform)
    assert isinstance(parse_values("a,b", str, "x"), Choice)
    with pytest.raises(ValueError, match="--batch-size: 'x' is not a valid int"):
        parse_values("16,x", int, "batch_size")
    with pytest.raises(ValueError, match="list the int values"):
        parse_values("16..64", int, "batch_size")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        space_from_args(_parse(["--data", str(tmp_path / "missing")]))


def test_cli_runs_a_sweep_and_continues_it(tmp_path, capsys):
    log = tmp_path / "calls.jsonl"
    argv = ["--lr", "1e-3,1e-2,1.0", "--activation", "relu,tanh", "--epochs", "2",
            "--param", f"log={log}", "--workers", "1", "--out", str(tmp_path / "out"),
            "--no-plots"]
    assert run_sweep_cli(_parse(argv), fake_trial) == 0
    text = capsys.readouterr().out
    assert "grid of 6 trials over lr (3), activation (2)" in text
    assert "Best: trial" in text and "diverged" in text
    assert len(_calls(log)) == 6
    assert run_sweep_cli(_parse(argv), fake_trial) == 0
    assert len(_calls(log)) == 6 and "6 of 6 trials already recorded" in capsys.readouterr().out
    random_argv = ["--lr", "1e-4..1e-1", "--trials", "3", "--halving", "--eta", "3",
                   "--epochs", "3", "--workers", "1", "--out", str(tmp_path / "r"),
                   "--no-plots", "--quiet"]
    assert run_sweep_cli(_parse(random_argv), fake_trial) == 0
    out = capsys.readouterr().out
    assert "Successive halving (rungs [1, 3] epochs)" in out
    assert run_sweep_cli(_parse(["--lr", "1e-4..1e-1", "--out", str(tmp_path / "x")]),
                         fake_trial) == 2
    assert "grid search cannot enumerate lr" in capsys.readouterr().out


# --------------------------------------------------------------------------- the real demo
DEMO = ROOT / "demos" / "bees_vs_wasps.py"


def _demo_module():
    """The bees-vs-wasps demo, imported from its file once per process."""
    import importlib.util
    name = "bees_vs_wasps_demo_for_tune_tests"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DEMO)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def demo_trial(config, epochs, resume_from=None, checkpoint_path=None):
    """A sweep trial through the demo's run_experiment (what its sweep command runs)."""
    from minigrad.tune import ExperimentTrial
    trial = ExperimentTrial(_demo_module().run_experiment, verbose=0, plots=False)
    return trial(config, epochs, resume_from=resume_from, checkpoint_path=checkpoint_path)


def recording_run(config, verbose=1):
    """Stands in for a script's run_experiment: returns what it was given."""
    return {"history": {"loss": [0.5] * config["epochs"]}, "given": config, "verbose": verbose}


def test_experiment_trial_adapts_a_run_function(tmp_path):
    import pickle
    from minigrad.tune import ExperimentTrial
    trial = pickle.loads(pickle.dumps(ExperimentTrial(recording_run, verbose=0)))
    ckpt = str(tmp_path / "trials" / "abc" / "checkpoint.npz")
    result = trial({"lr": 0.1, "epochs": 9}, 3, resume_from=ckpt, checkpoint_path=ckpt)
    assert result["given"] == {"lr": 0.1, "epochs": 3, "out": str(tmp_path / "trials" / "abc"),
                               "resume": True}
    assert result["verbose"] == 0
    assert trial({"lr": 0.1}, 2)["given"] == {"lr": 0.1, "epochs": 2, "out": None,
                                              "resume": False}
    with pytest.raises(ValueError, match="resumes only from OUT/checkpoint.npz"):
        trial({}, 1, resume_from=str(tmp_path / "other.npz"), checkpoint_path=ckpt)


@pytest.mark.slow
def test_real_sweep_on_hymenoptera_finishes_and_ranks(tmp_path):
    data = shared_data("hymenoptera")
    pytest.importorskip("PIL", reason="the photos are decoded with Pillow")
    space = {"optimizer": ["adam", "sgd"], "lr": [1e-3, 1e-2], "size": 32, "epochs": 2,
             "data": str(data), "cache": False}
    results = Sweep(space, demo_trial, tmp_path, workers=2, halving=Halving(eta=2),
                    verbose=0, plots=False).run()
    assert len(results) == 4 and [r["rank"] for r in results] == [1, 2, 3, 4]
    assert all(r["status"] == "ok" for r in results), [r["error"] for r in results]
    assert [r["epochs"] for r in results] == [2, 2, 1, 1]
    assert all(r["resumed"] for r in results[:2])  # survivors continued from checkpoints
    for row in results:
        assert 0.0 <= row["best_val_accuracy"] <= 1.0 and row["images_per_second"] > 0
        assert (tmp_path / "trials" / row["trial_id"] / "checkpoint.npz").exists()
    scores = [r["score"] for r in results[:2]] + [r["score"] for r in results[2:]]
    assert scores[0] >= scores[1] and scores[2] >= scores[3]
    assert results.halving["epochs_run"] == 6 and results.halving["epochs_full"] == 8


def test_cli_interrupted_sweep_keeps_finished_trials_and_continues(tmp_path, capsys,
                                                                   monkeypatch):
    argv = ["--param", "x=1,2,3", "--epochs", "1", "--workers", "1", "--out",
            str(tmp_path), "--no-plots"]
    assert run_sweep_cli(_parse(argv), interrupted_trial) == 130
    assert "run the same command again to continue" in capsys.readouterr().out
    assert [r["config"]["x"] for r in _strict_json(tmp_path / "results.json")["trials"]] == [1]
    monkeypatch.setenv("FAKE_TRIAL_NO_INTERRUPT", "1")
    assert run_sweep_cli(_parse(argv), interrupted_trial) == 0
    assert len(_strict_json(tmp_path / "results.json")["trials"]) == 3
    (tmp_path / "results.json").write_text("[]")
    assert run_sweep_cli(_parse(argv), interrupted_trial) == 2
    assert "not a minigrad sweep results file" in capsys.readouterr().out


def test_halving_max_epochs_may_exceed_the_configs(tmp_path):
    results = _sweep({"lr": [1e-3, 1e-2, 3e-2], "epochs": 1}, tmp_path,
                     halving=Halving(eta=3, max_epochs=3)).run()
    assert [r["epochs"] for r in results] == [3, 1, 1]
    assert results.halving["epochs_full"] == 9 and results.halving["epochs_run"] == 5


def test_a_worker_takes_its_share_even_before_the_queue_has_flushed(monkeypatch):
    """The shares queue is fed by a background thread: a worker that starts before it
    ran must wait for its share, not stay unpinned (seen once on a loaded machine)."""
    import queue
    from minigrad.tune import executors

    class NotYetFlushed:  # a multiprocessing queue whose feeder thread has not run yet
        def get_nowait(self):
            raise queue.Empty

        def get(self, timeout=None):
            return [1]

    pinned = []
    monkeypatch.setattr(executors.os, "sched_setaffinity",
                        lambda tid, share: pinned.append(share), raising=False)
    executors._pin_worker(NotYetFlushed())
    assert pinned and all(share == [1] for share in pinned)
