"""Hyperparameter tuning: grid and random search, successive halving, parallel trials.

::

    from minigrad.tune import Sweep, SearchSpace, Halving, loguniform

    def trial(config, epochs, resume_from=None, checkpoint_path=None):
        ...                      # build, fit(..., epochs=epochs, resume=resume_from)
        return {"history": history}

    space = SearchSpace({"optimizer": ["adam", "sgd"], "lr": loguniform(1e-4, 1e-2),
                         "epochs": 9})
    results = Sweep(space, trial, "runs/sweep", kind="random", trials=12,
                    halving=Halving(eta=3)).run()
    print(results.table()); results.best["config"]

Trials run in a local pool of processes (one per core, each pinned to its
cores) or, with ``cluster="tcp://host:8786"``, on a Dask ``distributed``
scheduler (``pip install 'minigrad[cluster]'``; the data and the output folder
must be at the same paths on the workers). Every trial is recorded in
``out_dir/results.json`` and ``results.csv``, rewritten atomically after each
trial; running the same sweep again skips the finished ones. The trial-function
protocol is described in :mod:`minigrad.tune.trial`; the ``sweep`` command line
in :mod:`minigrad.tune.cli`.
"""
from .cli import add_sweep_arguments, run_sweep_cli, sweep_main
from .executors import DaskExecutor, LocalPool, Sequential, available_cores, core_shares
from .space import (Choice, Distribution, LogUniform, SearchSpace, Uniform, choice,
                    loguniform, trial_id, uniform)
from .results import SweepMetricError, SweepResults, SweepResultsError
from .sweep import Halving, Sweep
from .trial import ExperimentTrial, execute_trial

__all__ = ["SearchSpace", "Distribution", "Choice", "Uniform", "LogUniform", "choice",
           "uniform", "loguniform", "trial_id", "Sweep", "Halving", "SweepResults",
           "SweepResultsError", "SweepMetricError", "ExperimentTrial", "execute_trial",
           "Sequential", "LocalPool", "DaskExecutor",
           "available_cores", "core_shares", "add_sweep_arguments", "run_sweep_cli",
           "sweep_main"]
