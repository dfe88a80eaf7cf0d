"""One trial, run where a worker runs it, and what its result means.

The trial-function protocol (what :class:`~minigrad.tune.Sweep` calls)::

    def trial_fn(config, epochs, resume_from=None, checkpoint_path=None) -> dict

- ``config``: the trial's hyperparameters (a plain dict; its ``"seed"`` is the run's seed).
- ``epochs``: train up to this many epochs in total. Successive halving asks for
  fewer than ``config["epochs"]`` first, then more.
- ``checkpoint_path``: where to keep a resumable checkpoint (e.g.
  ``fit(..., callbacks=[ModelCheckpoint(checkpoint_path)])``), or ``None``.
- ``resume_from``: a checkpoint written there by an earlier call for the same
  config: continue that run (``fit(..., resume=resume_from)``) and return the
  history from epoch 1. ``None``: start afresh.
- The returned dict holds ``"history"``: per-epoch lists (``loss``, ``accuracy``,
  ``val_loss``, ``val_accuracy``, ``seconds``, ...; a ``minigrad.train.History``
  is fine) and may hold ``"seconds"``, ``"images_per_second"``, ``"chance_accuracy"``
  (what guessing scores, e.g. 1/classes: the sweep's plots draw it), ``"diverged"``
  (bool), ``"divergence"`` (what diverged, text) and ``"error"`` (text).
- A NaN/infinite training loss in the history, ``"diverged": True``, or a raised
  ``FloatingPointError`` (``minigrad.train.TrainingDiverged`` is one) make the
  trial ``"diverged"``; any other exception, ``SystemExit`` included, makes it
  ``"failed"`` with its message. Neither stops the sweep; only ``KeyboardInterrupt``
  (Ctrl-C) does.

The function must be importable by worker processes: defined at module level in
an importable module (or the main script); lambdas and nested functions are not.
"""
import math
import os
import socket
import time
import traceback

from ..train import history_dict, metric_sign

__all__ = ["execute_trial", "ExperimentTrial", "normalise_history", "history_metrics",
           "finite_loss_epochs", "limit_threads"]

#: Result keys copied into a trial's row when the trial function provides them.
_PASSTHROUGH = ("images_per_second", "seconds", "chance_accuracy")


class ExperimentTrial:
    """A trial function made from a script's ``run(config, **kwargs) -> dict``.

    For the common shape of a training script: ``run`` takes the config as a
    dict, trains ``config["epochs"]`` epochs, keeps a resumable checkpoint at
    ``<config["out"]>/checkpoint.npz`` and continues from it when
    ``config["resume"]`` is true, and returns a dict with a ``"history"``. Each
    call gets the trial's config plus ``epochs``, ``out`` (the trial's own
    folder, ``out_dir/trials/<id>``) and ``resume``; ``kwargs`` (e.g.
    ``verbose=0``) are passed on. Picklable when ``run`` is a module-level function.
    """

    def __init__(self, run, checkpoint_name="checkpoint.npz", **kwargs):
        if not callable(run):
            raise TypeError(f"ExperimentTrial needs a callable, got {type(run).__name__}")
        self.run = run
        self.checkpoint_name = checkpoint_name
        self.kwargs = kwargs

    def __call__(self, config, epochs, resume_from=None, checkpoint_path=None):
        out = os.path.dirname(checkpoint_path) if checkpoint_path else None
        if checkpoint_path and os.path.basename(checkpoint_path) != self.checkpoint_name:
            raise ValueError(f"{getattr(self.run, '__name__', 'run')} keeps its checkpoint in "
                             f"OUT/{self.checkpoint_name}, not {checkpoint_path}")
        if resume_from is not None and os.path.abspath(resume_from) != \
                os.path.abspath(checkpoint_path or ""):
            raise ValueError(f"{getattr(self.run, '__name__', 'run')} resumes only from "
                             f"OUT/{self.checkpoint_name}, not {resume_from}")
        config = {**config, "epochs": int(epochs), "out": out, "resume": resume_from is not None}
        return self.run(config, **self.kwargs)

    def __repr__(self):
        return f"ExperimentTrial({getattr(self.run, '__qualname__', self.run)!r})"


def _finite_or_none(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def normalise_history(history):
    """Per-epoch lists as ``{name: [float | None]}``; NaN and infinities become ``None``
    (so the results file is strict JSON). Accepts a ``History``, its ``.history`` dict,
    or its ``to_dict()`` form."""
    if history is None:
        return {}
    data = history_dict(history, "a trial's history")
    out = {}
    for key, values in data.items():
        if isinstance(values, (list, tuple)) or hasattr(values, "tolist"):
            values = values.tolist() if hasattr(values, "tolist") else values
            out[str(key)] = [_finite_or_none(v) for v in values]
    return out


def finite_loss_epochs(history):
    """How many leading epochs of a normalised history have a finite training loss
    (every epoch when it records no ``loss``): the epochs a trial trained soundly."""
    losses = history.get("loss")
    if losses is None:
        return max((len(values) for values in history.values()), default=0)
    for i, value in enumerate(losses):
        if value is None:  # NaN/inf were normalised to None
            return i
    return len(losses)


def history_metrics(history, metric="val_accuracy", upto=None, mode="auto"):
    """Summary of a normalised history, optionally of its first ``upto`` epochs only.

    Returns ``epochs``, ``score`` (the best ``metric``: its largest value with
    ``mode="max"``, its smallest with ``"min"``; ``"auto"``: largest for accuracies,
    smallest otherwise), ``best_epoch`` (1-based), ``best_val_accuracy``, ``final_*``
    of loss, accuracy, val_loss and val_accuracy, and ``epoch_seconds`` (their sum).
    """
    def cut(key):
        values = history.get(key) or []
        return values[:upto] if upto is not None else values

    epochs = len(cut("loss")) or max((len(cut(k)) for k in history), default=0)
    out = {"epochs": epochs}
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        values = cut(key)
        out["final_" + key] = values[-1] if values else None
    accs = [v for v in cut("val_accuracy") if v is not None]
    out["best_val_accuracy"] = max(accs) if accs else None
    values = cut(metric)
    sign = metric_sign(metric, mode)
    best, best_epoch = None, None
    for i, v in enumerate(values):
        if v is not None and (best is None or sign * v > sign * best):
            best, best_epoch = v, i + 1
    out["score"] = best
    out["best_epoch"] = best_epoch
    seconds = [v for v in cut("seconds") if v is not None]
    out["epoch_seconds"] = sum(seconds) if seconds else None
    return out


def limit_threads(threads):
    """Cap this thread's Numba parallelism at ``threads`` (for workers sharing a host)."""
    if not threads:
        return
    try:
        import numba
    except ImportError:
        return
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def execute_trial(trial_fn, config, epochs, checkpoint_path=None, threads=None):
    """Run ``trial_fn`` once, here, and return the outcome as a plain dict.

    Resumes from ``checkpoint_path`` when a checkpoint is already there (a
    survivor of successive halving, or a trial whose earlier run was killed).
    Never raises for the trial's own errors: they become ``status`` ``"diverged"``
    or ``"failed"`` with the message and traceback, so a sweep always goes on.
    """
    limit_threads(threads)
    resume_from = None
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        resume_from = checkpoint_path
    outcome = {"status": "ok", "history": {}, "error": None, "traceback": None,
               "resumed": resume_from is not None, "epochs_requested": int(epochs),
               "worker": f"{socket.gethostname()}:{os.getpid()}"}
    start = time.perf_counter()
    try:
        result = trial_fn(dict(config), int(epochs), resume_from=resume_from,
                          checkpoint_path=checkpoint_path)
        if not isinstance(result, dict):
            raise TypeError(f"the trial function returned a {type(result).__name__}; it must "
                            f"return a dict with at least a 'history'")
        outcome["history"] = normalise_history(result.get("history"))
        for key in _PASSTHROUGH:
            if key in result:
                outcome[key] = _finite_or_none(result[key])
        sound = finite_loss_epochs(outcome["history"])
        bad_epoch = sound + 1 if sound < len(outcome["history"].get("loss", ())) else None
        if result.get("diverged") or result.get("status") == "diverged" or bad_epoch:
            outcome["status"] = "diverged"
            outcome["error"] = str(result.get("error") or result.get("divergence") or
                                   f"the training loss became NaN or infinite at epoch "
                                   f"{bad_epoch}")
        elif result.get("error"):
            outcome["status"] = "failed"
            outcome["error"] = str(result["error"])
    except FloatingPointError as exc:  # minigrad.train.TrainingDiverged is one
        outcome["status"] = "diverged"
        outcome["error"] = str(exc) or type(exc).__name__
        if getattr(exc, "epoch", None) is not None:
            outcome["diverged_epoch"] = int(exc.epoch)
    except (KeyboardInterrupt, GeneratorExit):
        raise  # the user stops the sweep (a restart runs this trial again)
    except BaseException as exc:  # SystemExit too: the sweep records the failure, goes on
        outcome["status"] = "failed"
        outcome["error"] = f"{type(exc).__name__}: {exc}"
        outcome["traceback"] = traceback.format_exc(limit=-8)
    if outcome.get("seconds") is None:
        outcome["seconds"] = time.perf_counter() - start
    if outcome.get("images_per_second") is None:
        rates = [v for v in outcome["history"].get("images_per_second", []) if v is not None]
        outcome["images_per_second"] = sum(rates) / len(rates) if rates else None
    return outcome
