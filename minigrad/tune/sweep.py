"""The sweep: run every trial of a search space, record each, rank them, restart safely.

::

    from minigrad.tune import Sweep, SearchSpace, Halving, loguniform
    space = SearchSpace({"optimizer": ["adam", "sgd"], "lr": [1e-2, 1e-3, 1e-4],
                         "epochs": 9})
    results = Sweep(space, trial_fn, "runs/sweep", halving=Halving(eta=3)).run()
    results.best["config"]

Results (:mod:`minigrad.tune.results`) land in ``out_dir/results.json`` (everything,
per-epoch histories included) and ``out_dir/results.csv`` (one ranked row per trial),
both rewritten atomically after every trial. Running the same sweep again in the same folder
skips the trials already recorded (a trial killed mid-way left no row and runs
again, continuing from its checkpoint when it had written one).
"""
import math
import pickle
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..io import atomic_write_json, atomic_write_text
from ..train import metric_sign
from .executors import DaskExecutor, LocalPool, Sequential, Task, available_cores
from .results import (RESULTS_FORMAT, RESULTS_VERSION, SweepMetricError, SweepResults,
                      SweepResultsError, csv_text, read_results)
from .space import SearchSpace, canonical_json, trial_id
from .trial import finite_loss_epochs, history_metrics

__all__ = ["Sweep", "Halving", "SweepResults", "SweepResultsError", "SweepMetricError",
           "RESULTS_FORMAT"]

_STATUS_ORDER = {"ok": 0, "diverged": 1, "failed": 2}
#: A row's fields computed from its history (see history_metrics).
_ROW_METRICS = ("epochs", "score", "best_epoch", "best_val_accuracy", "final_val_accuracy",
                "final_val_loss", "final_accuracy", "final_loss", "epoch_seconds")


@dataclass
class Halving:
    """Successive halving: all trials train ``min_epochs`` (the first rung); the best
    ``1/eta`` of them continue (from their checkpoints) to ``eta`` times as many
    epochs; and so on up to ``max_epochs`` (default: the trials' ``epochs``).

    The rungs are ``min_epochs * eta**k`` below ``max_epochs``, then ``max_epochs``
    itself, as ASHA's rungs (Ray Tune's grace period and reduction factor): e.g.
    1, 3, 9 for ``max_epochs=9, eta=3``; 2, 6, 9 with ``min_epochs=2``; 1, 3, 9, 10
    for ``max_epochs=10``. Trials are ranked at each rung by the best validation
    metric of their first rung-many epochs; diverged and failed trials never continue.
    """

    min_epochs: int = 1
    eta: int = 3
    max_epochs: "int | None" = None

    def __post_init__(self):
        if int(self.eta) != self.eta or self.eta < 2:
            raise ValueError(f"halving eta must be an integer >= 2, got {self.eta!r}")
        if int(self.min_epochs) != self.min_epochs or self.min_epochs < 1:
            raise ValueError(f"halving min_epochs must be an integer >= 1, got "
                             f"{self.min_epochs!r}")
        if self.max_epochs is not None and (int(self.max_epochs) != self.max_epochs
                                            or self.max_epochs < self.min_epochs):
            raise ValueError(f"halving max_epochs must be an integer >= min_epochs "
                             f"({self.min_epochs}), got {self.max_epochs!r}")
        self.eta, self.min_epochs = int(self.eta), int(self.min_epochs)

    def rungs(self, max_epochs=None):
        """The epoch counts of the rungs, increasing: ``min_epochs``, then ``eta`` times
        more each, the last being ``max_epochs``."""
        top = int(self.max_epochs if self.max_epochs is not None else max_epochs)
        if top < self.min_epochs:
            raise ValueError(f"halving needs at least min_epochs={self.min_epochs} epochs, "
                             f"the trials have {top}")
        rungs, epochs = [], self.min_epochs
        while epochs < top:
            rungs.append(epochs)
            epochs *= self.eta
        return rungs + [top]


class Sweep:
    """Run ``trial_fn`` over a search space and rank the trials.

    Parameters
    ----------
    space : a :class:`SearchSpace`, a dict for one, or a list of config dicts
    trial_fn : ``trial_fn(config, epochs, resume_from=None, checkpoint_path=None) -> dict``
        (see :mod:`minigrad.tune.trial`); module-level, so workers can import it
    out_dir : folder of ``results.json``, ``results.csv``, the plots and
        ``trials/<id>/`` (each trial's checkpoint)
    workers : parallel trials on this machine; default one per core; ``1`` runs
        them one after another in this process
    cluster : a Dask scheduler address, cluster object or ``Client``: run the
        trials there instead (``workers`` is then ignored)
    halving : a :class:`Halving` (``True`` for the default one) or ``None``
    kind, trials, seed : how a :class:`SearchSpace` expands (``"grid"``, or
        ``"random"`` with ``trials`` draws seeded by ``seed``); ``seed`` is also
        every trial's ``config["seed"]`` unless the space sets one
    epochs : the trials' epochs when the configs do not say (``config["epochs"]``)
    metric : what ranks the trials: a history key, best value over the epochs;
        a name the trials' histories lack stops the sweep (:class:`SweepMetricError`)
        once the first trial has finished and been recorded
    mode : which way ``metric`` improves: ``"max"``, ``"min"``, or ``"auto"`` (max
        for accuracies, min for anything else, e.g. a loss; give ``"max"`` for
        ``val_f1``, ``val_auc``, ...). Trials recorded in ``out_dir`` by an earlier
        sweep are ranked afresh, from their histories, by this metric and mode
    checkpoints : give each trial ``out_dir/trials/<id>/checkpoint.npz`` (needed
        for halving to continue trials instead of retraining them)
    retry_failed : on a restart, run trials recorded as failed again
    verbose : 0 silent, 1 a line per trial and the summary
    plots : write the plots at the end (needs matplotlib; skipped with a note)
    """

    def __init__(self, space, trial_fn, out_dir, workers=None, cluster=None, halving=None,
                 kind="grid", trials=None, seed=0, epochs=None, metric="val_accuracy",
                 mode="auto", checkpoints=True, retry_failed=False, verbose=1, plots=True,
                 print_fn=print):
        if not callable(trial_fn):
            raise TypeError(f"trial_fn must be callable, got {type(trial_fn).__name__}")
        self.trial_fn = trial_fn
        self.out_dir = Path(out_dir).resolve()
        self.metric = str(metric)
        self.mode = mode
        self.sign = metric_sign(self.metric, mode)  # also refuses an unknown mode
        self.seed = int(seed)
        self.search = {"kind": kind, "trials": trials, "seed": self.seed}
        if isinstance(space, (list, tuple)):
            configs = [dict(c) for c in space]
            self.search = {"kind": "list", "trials": len(configs), "seed": self.seed}
            self.space_description = None
        else:
            space = SearchSpace(space)
            configs = space.expand(kind, trials=trials, seed=self.seed)
            self.space_description = space.describe()
        if not configs:
            raise ValueError("the sweep has no trials")
        self.configs = []
        for config in configs:
            if not isinstance(config, dict):
                raise TypeError(f"each trial config must be a dict, got {type(config).__name__}")
            config = dict(config)
            config.setdefault("seed", self.seed)
            if "epochs" not in config:
                if epochs is None:
                    raise ValueError("the trials' number of epochs is unknown: put 'epochs' in "
                                     "the search space or pass Sweep(..., epochs=N)")
                config["epochs"] = int(epochs)
            if int(config["epochs"]) != config["epochs"] or config["epochs"] < 1:
                raise ValueError(f"epochs must be a positive integer, got {config['epochs']!r}")
            canonical_json(config)
            self.configs.append(config)
        self.ids = [trial_id(c) for c in self.configs]
        if len(set(self.ids)) != len(self.ids):
            raise ValueError("the sweep lists the same configuration more than once")
        self.varied = _varied_names(self.configs)
        if halving is True:
            halving = Halving()
        elif isinstance(halving, dict):
            halving = Halving(**halving)
        if halving is not None and not isinstance(halving, Halving):
            raise TypeError(f"halving must be a Halving, True, a dict or None, got "
                            f"{type(halving).__name__}")
        if halving is not None and len({c["epochs"] for c in self.configs}) > 1:
            raise ValueError("successive halving decides how long each trial trains; do not "
                             "vary 'epochs' in a halving sweep")
        self.halving = halving
        # Bad halving settings (min_epochs above the epochs) fail here, before any work.
        self.rungs = None if halving is None else halving.rungs(int(self.configs[0]["epochs"]))
        self.cluster = cluster
        self.workers = workers
        if workers is not None and (int(workers) != workers or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.checkpoints = bool(checkpoints)
        self.retry_failed = bool(retry_failed)
        self.verbose = verbose
        self.plots = plots
        self.print_fn = print_fn
        self.rows = {}  # trial id -> row, this sweep's and earlier ones found in out_dir
        self.halving_stats = None

    # ------------------------------------------------------------------ plumbing
    def _say(self, text):
        if self.verbose:
            self.print_fn(text)

    def _executor(self):
        if self.cluster is not None:
            return DaskExecutor(self.cluster)
        workers = self.workers if self.workers is not None else len(available_cores())
        if workers == 1:
            return Sequential()
        _check_sendable(self.trial_fn)
        return LocalPool(workers)

    def _checkpoint_path(self, tid):
        if not self.checkpoints:
            return None
        return str(self.out_dir / "trials" / tid / "checkpoint.npz")

    def _load_previous(self):
        data = read_results(self.out_dir / "results.json")
        if data is None:
            return 0
        mine = set(self.ids)
        for row in data.get("trials", []) + data.get("other_trials", []):
            if row["trial_id"] in mine:
                self._refresh(row)  # an earlier sweep may have ranked by another metric
                self._check_metric(row)
            self.rows[row["trial_id"]] = row
        return sum(1 for tid in self.ids if tid in self.rows)

    def _is_done(self, tid, epochs):
        row = self.rows.get(tid)
        if row is None:
            return False
        if row["status"] == "failed":
            return not self.retry_failed
        if row["status"] == "diverged":
            return True
        return int(row.get("epochs_requested") or 0) >= epochs

    def _record(self, task, outcome):
        previous = self.rows.get(task.trial_id) or {}
        history = outcome.get("history") or {}
        trained = history_metrics(history)["epochs"]
        # Epochs spent in all calls (a survivor retrained without a checkpoint counts
        # its earlier rungs again): what the halving report counts.
        before = previous.get("epochs_run", previous.get("epochs") or 0)
        if outcome.get("resumed"):
            trained -= min(trained, previous.get("epochs") or 0)
        seconds = outcome.get("seconds")
        if outcome.get("resumed") and previous.get("seconds") is not None \
                and seconds is not None:
            seconds += previous["seconds"]  # a continued trial: its total cost
        if not history:  # failed, diverged or its worker died: keep what earlier rungs had
            history = previous.get("history") or {}
            seconds = seconds if seconds is not None else previous.get("seconds")
        row = {"trial_id": task.trial_id, "status": outcome["status"], "config": task.config,
               "seed": task.config.get("seed"),
               "epochs_requested": outcome.get("epochs_requested", task.epochs),
               "epochs_run": before + trained}
        row.update(seconds=seconds, images_per_second=outcome.get("images_per_second"),
                   chance_accuracy=outcome.get("chance_accuracy",
                                               previous.get("chance_accuracy")),
                   error=outcome.get("error"), traceback=outcome.get("traceback"),
                   resumed=bool(outcome.get("resumed")), worker=outcome.get("worker"),
                   finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"), history=history)
        if outcome.get("diverged_epoch") is not None:
            row["diverged_epoch"] = outcome["diverged_epoch"]
        self.rows[task.trial_id] = self._refresh(row)
        self._write()
        self._check_metric(row)  # after the write: the trial is kept either way
        return row

    def _refresh(self, row):
        """Recompute a row's scores from its history for this sweep's metric and mode,
        and its rung from the epochs it reached against this sweep's rungs."""
        metrics = history_metrics(row.get("history") or {}, self.metric, mode=self.mode)
        row.update({k: metrics[k] for k in _ROW_METRICS})
        if self.rungs is None:
            row["rung"] = None
        else:
            reached = self._reached_epochs(row)
            row["rung"] = max(0, sum(1 for epochs in self.rungs if epochs <= reached) - 1)
        return row

    @staticmethod
    def _reached_epochs(row):
        """The epochs a trial is known to have trained soundly: all it was asked for when
        it finished ``ok``; otherwise the leading epochs with a finite loss that its
        history holds from earlier, shorter calls (it failed in the last one)."""
        requested = int(row.get("epochs_requested") or row.get("epochs") or 0)
        if row["status"] == "ok":
            return requested
        return min(finite_loss_epochs(row.get("history") or {}), requested - 1)

    def _check_metric(self, row):
        """A finished trial whose history lacks the metric: stop with the names it has."""
        history = row.get("history") or {}
        if row["status"] != "ok" or not history or self.metric in history:
            return
        raise SweepMetricError(
            f"the sweep ranks trials by metric {self.metric!r}, but trial {row['trial_id']}'s "
            f"history has no such key; it has: {', '.join(sorted(history))}. Its results are "
            f"kept in {self.out_dir / 'results.json'}; run the sweep again with one of those "
            f"as the metric (--metric) and the recorded trials are ranked without training "
            f"them again")

    # ------------------------------------------------------------------ ranking
    def _rank_key(self, row, order, upto=None):
        """Sort key: finished first, further rung first, better score first, then lower
        final validation loss, then the order of the space (so ties rank stably).

        With ``upto`` (a rung's epochs, ranking trials that all trained that far
        soundly): only the score and validation loss of those first epochs count,
        whatever happened to a trial later."""
        if upto is not None:
            metrics = history_metrics(row.get("history") or {}, self.metric, upto=upto,
                                      mode=self.mode)
            score, val_loss = metrics["score"], metrics["final_val_loss"]
            standing = (0, 0)
        else:
            score, val_loss = row.get("score"), row.get("final_val_loss")
            standing = (_STATUS_ORDER.get(row["status"], 3), -(row.get("rung") or 0))
        return standing + (0 if score is not None else 1,
                           -self.sign * score if score is not None else 0.0,
                           val_loss if val_loss is not None else math.inf,
                           order.get(row["trial_id"], len(order)))

    def ranked_rows(self):
        """This sweep's recorded rows, best first, each with its ``rank``."""
        order = {tid: i for i, tid in enumerate(self.ids)}
        rows = sorted((self.rows[t] for t in self.ids if t in self.rows),
                      key=lambda r: self._rank_key(r, order))
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        return rows

    def results(self):
        """The current :class:`SweepResults` (what ``run`` returns)."""
        return SweepResults(self.ranked_rows(), self.varied, self.metric, self.halving_stats,
                            self.out_dir, self.search, self.mode)

    # ------------------------------------------------------------------ files
    def _write(self):
        rows = self.ranked_rows()
        mine = set(self.ids)
        others = [row for tid, row in self.rows.items() if tid not in mine]
        data = {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, "metric": self.metric,
                "mode": self.mode, "search": self.search, "space": self.space_description,
                "halving": (None if self.halving is None else
                            {**asdict(self.halving), **(self.halving_stats or {})}),
                "varied": self.varied, "trials": rows}
        if others:
            data["other_trials"] = others  # earlier sweeps' rows in this folder: kept
        atomic_write_json(self.out_dir / "results.json", data)
        atomic_write_text(self.out_dir / "results.csv", csv_text(rows, self.metric))

    # ------------------------------------------------------------------ running
    def _run_tasks(self, executor, tasks, progress):
        outcomes = executor.run(self.trial_fn, tasks)
        try:
            for task, outcome in outcomes:
                row = self._record(task, outcome)
                progress[0] += 1
                self._say(_progress_line(row, progress, self.varied, self.metric))
        finally:
            outcomes.close()  # interrupted: the executor drops the trials not yet started

    def _run_plain(self, executor):
        tasks = [Task(tid, config, int(config["epochs"]), self._checkpoint_path(tid))
                 for tid, config in zip(self.ids, self.configs)
                 if not self._is_done(tid, int(config["epochs"]))]
        skipped = len(self.ids) - len(tasks)
        if skipped:
            self._say(f"{skipped} of {len(self.ids)} trials already recorded in "
                      f"{self.out_dir / 'results.json'}: skipped")
        self._run_tasks(executor, tasks, [0, len(tasks)])

    def _run_halving(self, executor):
        rungs = self.rungs
        max_epochs = rungs[-1]  # Halving(max_epochs=...) may differ from the configs'
        config_of = dict(zip(self.ids, self.configs))
        order = {tid: i for i, tid in enumerate(self.ids)}
        alive = list(self.ids)
        for k, epochs in enumerate(rungs):
            tasks = [Task(tid, config_of[tid], epochs, self._checkpoint_path(tid))
                     for tid in alive if not self._is_done(tid, epochs)]
            note = f", {len(alive) - len(tasks)} already recorded" if len(tasks) < len(alive) \
                else ""
            self._say(f"Rung {k + 1}/{len(rungs)}: {len(alive)} trial(s) to {epochs} "
                      f"epoch(s){note}")
            self._run_tasks(executor, tasks, [0, len(tasks)])
            if k == len(rungs) - 1:
                break
            keep = max(1, len(alive) // self.halving.eta)
            # A trial that trained this rung soundly competes here even if it failed or
            # diverged later (in an earlier run of this sweep): a restart promotes the same.
            finished = [tid for tid in alive if self._reached_epochs(self.rows[tid]) >= epochs]
            finished.sort(key=lambda t: self._rank_key(self.rows[t], order, upto=epochs))
            alive = sorted(finished[:keep], key=order.get)
            if not alive:
                self._say("No trial finished this rung; successive halving stops here")
                break
        self.halving_stats = _halving_savings([self.rows[t] for t in self.ids if t in self.rows],
                                              len(self.ids), max_epochs, rungs)
        self._write()

    def run(self):
        """Run the trials not yet recorded, then print and plot the summary.

        Returns the :class:`SweepResults`.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._load_previous()
        start = time.perf_counter()
        with self._executor() as executor:
            what = (f"{len(self.ids)} trial(s) ranked by "
                    f"{'highest' if self.sign > 0 else 'lowest'} {self.metric}")
            if self.halving is not None:
                what += f", successive halving (eta {self.halving.eta}, rungs {self.rungs} epochs)"
            self._say(f"Sweep: {what} on {executor.description}; results in {self.out_dir}")
            if self.halving is not None:
                self._run_halving(executor)
            else:
                self._run_plain(executor)
        self._write()
        results = self.results()
        results.wall_seconds = time.perf_counter() - start
        if self.verbose:
            self._say("")
            self._say(results.summary())
            self._say(f"Sweep wall time {results.wall_seconds:.1f}s")
        if self.plots:
            from ..plot import PlotUnavailable
            try:
                paths = results.plot()
                self._say(f"Plots: {', '.join(str(p) for p in paths)}")
            except PlotUnavailable as exc:
                self._say(f"No plots: {exc}")
        return results


# --------------------------------------------------------------------------- helpers
def _varied_names(configs):
    """Config keys whose value differs between trials, in first-seen order."""
    names = []
    for config in configs:
        names.extend(k for k in config if k not in names)
    return [k for k in names if len({canonical_json(c.get(k)) for c in configs}) > 1]


def _check_sendable(trial_fn):
    """Fail early, with advice, when worker processes could not import ``trial_fn``."""
    try:
        pickle.dumps(trial_fn)
    except Exception as exc:
        raise TypeError(f"the trial function {trial_fn!r} cannot be sent to worker processes "
                        f"({exc}); define it at module level in an importable module, or run "
                        f"the sweep with workers=1") from None
    module = sys.modules.get(getattr(trial_fn, "__module__", None) or "")
    if getattr(trial_fn, "__module__", None) == "__main__" and \
            not getattr(module, "__file__", None):
        raise TypeError("the trial function is defined in an interactive session, which "
                        "spawned worker processes cannot import; put it in a module, or run "
                        "the sweep with workers=1")


def _halving_savings(rows, trials, max_epochs, rungs):
    """Epochs and (estimated) seconds halving spent, against every trial run in full.

    Counts every epoch each trial's calls ran (a survivor retrained from scratch
    without checkpoints ran its earlier rungs twice); seconds are estimated from
    each trial's mean epoch time."""
    epochs_run, seconds_run, seconds_full = 0, 0.0, 0.0
    for row in rows:
        epochs, spent = int(row.get("epochs") or 0), row.get("epoch_seconds")
        run = int(row.get("epochs_run", epochs) or 0)
        epochs_run += run
        if epochs and spent is not None:
            seconds_run += spent / epochs * run
            seconds_full += spent / epochs * max_epochs
    epochs_full = trials * max_epochs
    return {"rungs": rungs, "epochs_run": epochs_run, "epochs_full": epochs_full,
            "epochs_saved": epochs_full - epochs_run,
            "fraction_saved": (epochs_full - epochs_run) / epochs_full if epochs_full else 0.0,
            "seconds_run": seconds_run, "seconds_full_estimate": seconds_full}


def _progress_line(row, progress, varied, metric):
    from .report import format_value
    params = " ".join(f"{k}={format_value(row['config'].get(k))}" for k in varied)
    score = row.get("score")
    score = f"{metric} {score:.4f}" if score is not None else f"{metric} -"
    seconds = row.get("seconds")
    line = (f"[{progress[0]}/{progress[1]}] {row['trial_id']} {row['status']:<8} {score} "
            f"epochs {row.get('epochs') or 0} {seconds or 0:.1f}s  {params}")
    if row["status"] != "ok" and row.get("error"):
        line += f"\n    {row['error'].splitlines()[0][:200]}"
    return line
