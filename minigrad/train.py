"""Training: ``fit``, ``evaluate``, ``predict``, ``History`` and callbacks.

::

    from minigrad.train import fit, evaluate, EarlyStopping, ModelCheckpoint
    history = fit(model, train_loader, val_loader, loss="cross_entropy",
                  optimizer="adam", lr=1e-3, epochs=10,
                  callbacks=[EarlyStopping(patience=3), ModelCheckpoint("run/ckpt.npz")])
    history.history["val_accuracy"]          # one value per epoch, as in Keras
    result = evaluate(model, val_loader)     # loss, accuracy, confusion matrix

Everything beyond the bare loop is a small :class:`Callback`: the progress display,
learning-rate schedules, early stopping and checkpoints. A loss that turns NaN or
infinite stops training with :class:`TrainingDiverged`, before the bad step
touches the weights on the CPU; weights or a validation loss that turn NaN or
infinite stop it at the epoch's end, before any checkpoint is written, so the
last checkpoint is always a good one. ``fit(..., resume=path)`` continues a run from a
checkpoint written by :class:`ModelCheckpoint` (model, optimizer, schedules,
history, callbacks, random state and data order), and on the CPU the continued
run gives the same numbers as one never interrupted.
"""
import math
import numbers
import os
import time
import warnings
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from . import backend, losses as losses_module, optim as optim_module
from . import random as mg_random
from .io import atomic_write_json, load_tree, save_tree
from .tensor import Tensor, as_tensor, no_grad

__all__ = ["fit", "evaluate", "predict", "History", "Evaluation", "TrainingDiverged",
           "TrainingRun", "Callback", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "ProgressLogger", "save_checkpoint", "load_checkpoint"]

_CHECKPOINT_FORMAT = "minigrad-training-checkpoint"
_CHECKPOINT_VERSION = 2  # 2: callback states keyed by Callback.state_key, not position


# --------------------------------------------------------------------------- errors
class TrainingDiverged(FloatingPointError):
    """The loss, the validation loss or a weight became NaN or infinite.

    ``epoch`` and ``step`` count from 1; ``value`` is the non-finite number found;
    ``checkpoint`` the last checkpoint written (None if none), which holds no such value.
    """

    def __init__(self, message, epoch, step, value, lr, checkpoint=None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.value = value
        self.lr = lr
        self.checkpoint = checkpoint


# --------------------------------------------------------------------------- history
class History:
    """Per-epoch metrics of a run, Keras-style: ``history.history["val_loss"][epoch]``.

    Keys: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (when there is
    validation data), ``lr`` (the rate used during the epoch), ``seconds`` (the
    epoch's wall time, validation included) and ``images_per_second`` (training
    throughput), and every number a callback puts in the logs in its
    ``on_epoch_end`` (when ``fit`` records what, :class:`Callback` says). ``epoch``
    lists the epoch numbers (from 0).
    """

    def __init__(self, history=None, epoch=None, params=None):
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.epoch = list(epoch or [])
        self.params = dict(params or {})

    def append(self, epoch, logs):
        """Record one epoch's ``logs`` (a dict of numbers)."""
        self.epoch.append(int(epoch))
        self.update_last(logs)
        for values in self.history.values():  # keys missing this epoch get NaN
            if len(values) < len(self.epoch):
                values.append(math.nan)

    def update_last(self, logs):
        """Set the values of ``logs`` (a dict of numbers) in the last epoch's entry; a
        key new to the history reads NaN for the epochs before."""
        if not self.epoch:
            raise ValueError("History.update_last: no epoch recorded yet; call append first")
        for key, value in logs.items():
            values = self.history.setdefault(key, [])
            values.extend([math.nan] * (len(self.epoch) - len(values)))
            values[-1] = float(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epoch)

    def best(self, monitor="val_loss", mode="auto"):
        """``(epoch, value)`` of the best value of ``monitor`` (min for losses, max otherwise)."""
        values = self.history.get(monitor)
        if not values:
            raise KeyError(f"History has no {monitor!r}; it has {sorted(self.history)}")
        sign = metric_sign(monitor, mode)
        scores = [sign * v if not math.isnan(v) else -math.inf for v in values]
        i = int(np.argmax(scores))
        return self.epoch[i], values[i]

    def to_dict(self):
        """Plain-JSON form: ``{"history": {...}, "epoch": [...], "params": {...}}``."""
        return {"history": self.history, "epoch": self.epoch, "params": self.params}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict` (also accepts arrays from a checkpoint, and the
        ``null`` that strict JSON writes for NaN and infinities, read as NaN)."""
        return cls({k: [math.nan if x is None else float(x) for x in np.asarray(v).reshape(-1)]
                    for k, v in data["history"].items()},
                   [int(e) for e in np.asarray(data["epoch"]).reshape(-1)],
                   data.get("params", {}))

    def save(self, path):
        """Write ``history.json`` atomically."""
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        """Read a file written by :meth:`save`."""
        import json
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History({len(self)} epochs, last: {last})"


def history_dict(history, what="the history"):
    """The per-epoch lists (a dict) of a ``History``, of its ``.history`` dict or of
    its ``to_dict()`` / ``history.json`` form; anything else is a TypeError naming
    ``what``."""
    data = getattr(history, "history", history)
    if isinstance(data, dict) and isinstance(data.get("history"), dict):
        data = data["history"]  # the to_dict() / history.json form
    if not isinstance(data, dict):
        raise TypeError(f"{what} must be a History or its dict of per-epoch lists, got "
                        f"{type(history).__name__}")
    return data


def metric_sign(monitor, mode="auto"):
    """+1 when larger is better, -1 when smaller is (``auto``: accuracies up, the rest down).

    The one rule for "which way is better" of a metric name, used by callbacks,
    :meth:`History.best` and the sweeps of :mod:`minigrad.tune`.
    """
    if mode == "max":
        return 1.0
    if mode == "min":
        return -1.0
    if mode != "auto":
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return 1.0 if "acc" in monitor else -1.0


# --------------------------------------------------------------------------- targets
def _is_value_loss(loss_fn):
    return isinstance(loss_fn, (losses_module.MSELoss, losses_module.L1Loss,
                                losses_module.HuberLoss, losses_module.BCEWithLogitsLoss))


def _loss_target(loss_fn, output, y):
    """Class labels as the loss wants them: as they are, or one-hot for value losses.

    Cross-entropy and hinge take integer labels; MSE, MAE, Huber and the logistic
    loss compare the outputs with a target of the same shape, so integer labels
    become one-hot rows (or a column of 0/1 for a single output).
    """
    if not _is_value_loss(loss_fn) or y.dtype.kind not in "iu":
        return y
    xp = backend.array_module(output.data)
    if output.ndim == 2 and output.shape[1] > 1:
        return Tensor(xp.eye(output.shape[1], dtype=output.dtype)[y.data])
    return Tensor(y.data.reshape(output.shape).astype(output.dtype))


def _predicted_classes(loss_fn, output):
    """Class predictions from the outputs (argmax; a threshold for one output)."""
    xp = backend.array_module(output.data)
    if output.ndim == 2 and output.shape[1] > 1:
        return xp.argmax(output.data, axis=1)
    threshold = 0.0 if isinstance(loss_fn, losses_module.BCEWithLogitsLoss) else 0.5
    return (output.data.reshape(-1) > threshold).astype(np.int64)


def _confusion_matrix(labels, predicted, loader, output):
    """Rows: true class, columns: predicted class (NumPy integer arrays in).

    One row and column per class the loader's dataset names, per output of the
    model (two for a single output) and per label seen, whichever is most: a
    4-output head on a 2-class dataset gets a 4x4 matrix, so every prediction
    has its column.
    """
    if labels.size and labels.min() < 0:
        raise ValueError(f"evaluate: class labels must be >= 0, got {int(labels.min())}")
    classes = getattr(getattr(loader, "dataset", None), "classes", None)
    outputs = output.shape[1] if output.ndim == 2 and output.shape[1] > 1 else 2
    k = max(len(classes) if classes is not None else 0, outputs,
            int(labels.max(initial=-1)) + 1, int(predicted.max(initial=-1)) + 1)
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)


def _split_batch(batch, device):
    """``(x, y)`` from a loader's batch, moved to ``device`` if needed."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(f"fit/evaluate need batches of (inputs, targets), got a "
                         f"{type(batch).__name__}")
    x, y = batch[0], batch[1]
    x = x if isinstance(x, Tensor) else as_tensor(x)  # a batch: read, never kept
    y = y if isinstance(y, Tensor) else as_tensor(y)
    if x.device != device:
        x = x.to(device)
    if y.device != device:
        y = y.to(device)
    return x, y


# --------------------------------------------------------------------------- metering
class _EpochMeter:
    """Running loss and accuracy of an epoch, kept on the device between checks.

    On a GPU, reading a number back forces a synchronisation; the meter therefore
    collects per-step losses and correct counts as device scalars and reads them
    back only every ``check_every`` steps (and when someone asks). On the CPU the
    check happens every step, before the step's update.
    """

    def __init__(self, check_every):
        self.check_every = check_every
        self.pending = []  # (step, loss scalar, correct count or None, batch size)
        self.loss_sum = 0.0
        self.correct = 0
        self.counted = 0  # samples with an accuracy
        self.seen = 0

    def add(self, step, loss, correct, size):
        self.pending.append((step, loss, correct, size))

    def due(self):
        return len(self.pending) >= self.check_every

    def flush(self):
        """Read pending values back; returns ``(step, value)`` of a non-finite loss, or None."""
        if not self.pending:
            return None
        xp = backend.array_module(self.pending[0][1])
        losses = backend.to_numpy(xp.stack([p[1] for p in self.pending])).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            first = int(bad[0])
            return self.pending[first][0], float(losses[first])
        corrects = [p[2] for p in self.pending if p[2] is not None]
        if corrects:
            self.correct += int(backend.to_numpy(xp.stack(corrects)).sum())
            self.counted += sum(p[3] for p in self.pending if p[2] is not None)
        sizes = np.array([p[3] for p in self.pending], dtype=np.float64)
        self.loss_sum += float((losses * sizes).sum())
        self.seen += int(sizes.sum())
        self.pending = []
        return None

    def logs(self):
        logs = {"loss": self.loss_sum / self.seen if self.seen else math.nan}
        if self.counted:
            logs["accuracy"] = self.correct / self.counted
        return logs


# --------------------------------------------------------------------------- the run
class TrainingRun:
    """What callbacks see of a run in progress (``callback.run``).

    Attributes: ``model``, ``optimizer``, ``loss_fn``, ``history``, ``epoch``
    (0-based, the current one), ``epochs`` (total), ``step`` (0-based, in the
    epoch), ``steps`` (per epoch), ``train_loader``, ``val_loader``, ``device``,
    ``stop_training`` (set it to end after this epoch), ``last_checkpoint`` (path
    of the latest checkpoint written), ``callbacks``, ``cuda_graph`` (whether steps
    replay a captured CUDA graph).
    """

    def __init__(self, model, optimizer, loss_fn, train_loader, val_loader, epochs,
                 device, callbacks, history, cuda_graph=False):
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.epochs = epochs
        self.device = device
        self.callbacks = callbacks
        self.history = history
        self.cuda_graph = cuda_graph
        self.graphed = None  # the captured step, made at the first batch (cuda_graph only)
        self.epoch = 0
        self.step = 0
        self.steps = len(train_loader) if hasattr(train_loader, "__len__") else None
        self.stop_training = False
        self.last_checkpoint = None
        self.meter = None
        self.epoch_start = None
        self.images_seen = 0

    def lr(self):
        """The learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def running_logs(self):
        """Running loss and accuracy of the current epoch (reads pending values back)."""
        if self.meter is None:
            return {}
        bad = self.meter.flush()
        if bad is not None:
            _raise_diverged(self, *bad)
        return self.meter.logs()

    def images_per_second(self):
        """Training throughput so far this epoch."""
        if self.epoch_start is None:
            return 0.0
        return self.images_seen / max(time.perf_counter() - self.epoch_start, 1e-9)

    # ------------------------------------------------------------ checkpoints
    def callback_keys(self):
        """``(key, callback)`` pairs: the name each callback's state has in a checkpoint.

        The key is :meth:`Callback.state_key`; callbacks whose keys are equal are
        told apart by their order among themselves (``"Key"``, ``"Key#2"``, ...).
        """
        pairs, seen = [], {}
        for cb in self.callbacks:
            key = cb.state_key()
            seen[key] = seen.get(key, 0) + 1
            pairs.append((key if seen[key] == 1 else f"{key}#{seen[key]}", cb))
        return pairs

    def state(self):
        """Everything needed to continue this run, as a tree for :func:`save_checkpoint`."""
        callback_states = {}
        for key, cb in self.callback_keys():
            state = cb.state_dict()
            if state is not None:
                callback_states[key] = state
        loader = self.train_loader
        return {
            "format": _CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "epoch": len(self.history),  # completed epochs
            "model": dict(self.model.state_dict()),
            "optimizer_class": type(self.optimizer).__name__,
            "optimizer": self.optimizer.state_dict(),
            "history": self.history.to_dict(),
            "rng": mg_random.get_state(),
            "loader_seed": getattr(loader, "seed", None),
            "callbacks": callback_states,
        }

    def restore(self, state, source="checkpoint"):
        """Load a :meth:`state`; returns the number of epochs it had completed."""
        if state.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"{source} is not a minigrad training checkpoint")
        version = _checkpoint_version(state, source)
        saved_class = state.get("optimizer_class")
        if saved_class != type(self.optimizer).__name__:
            raise ValueError(f"{source} was trained with {saved_class}, but this run uses "
                             f"{type(self.optimizer).__name__}; resume with the same optimizer")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._restore_callbacks(dict(state["callbacks"]), version, source)
        restored = History.from_dict(state["history"])
        self.history.history, self.history.epoch = restored.history, restored.epoch
        mg_random.set_state(state["rng"])
        seed = state.get("loader_seed")
        if seed is not None and hasattr(self.train_loader, "seed"):
            self.train_loader.seed = int(seed)  # the continued run follows the same order
        return int(state["epoch"])

    def _restore_callbacks(self, saved, version, source):
        """Hand each callback the state saved under its key; warn about any mismatch."""
        if version == 1:  # keyed its states "{position}:{class name}"
            pairs = [(f"{i}:{type(cb).__name__}", cb) for i, cb in enumerate(self.callbacks)]
        else:
            pairs = self.callback_keys()
        fresh = []
        for key, cb in pairs:
            if key in saved:
                cb.load_state_dict(saved.pop(key))
            elif cb.resumes_from_state and cb.state_dict() is not None:
                fresh.append(key)
        if saved or fresh:
            problems = []
            if saved:
                problems.append(f"it holds state for callbacks this run does not have "
                                f"({', '.join(sorted(saved))}), which is ignored")
            if fresh:
                problems.append(f"callbacks {', '.join(fresh)} have no saved state and "
                                f"start afresh")
            warnings.warn(f"resuming from {source}: {'; '.join(problems)}. Resume with the "
                          f"callbacks of the interrupted run to continue it exactly.",
                          stacklevel=4)


def save_checkpoint(path, run):
    """Write ``run``'s full state to ``path`` atomically (see :class:`ModelCheckpoint`).

    Weights holding NaN or infinity are never written: that raises
    :class:`TrainingDiverged` and leaves the file as it was.
    """
    state = run.state()
    _refuse_nonfinite_weights(run, state["model"], path)
    save_tree(path, state)
    run.last_checkpoint = str(path)
    return path


def load_checkpoint(path):
    """Read a training checkpoint as a dict (``"model"`` holds the state dict).

    A missing file is a ``FileNotFoundError``; a file that cannot be read as a
    training checkpoint (truncated, damaged, another format, written by a newer
    minigrad) is a ``ValueError`` naming it.
    """
    weights_hint = ("a weights file from Module.save cannot resume training; load it with "
                    "model.load(path) instead")
    try:
        state = load_tree(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, NotImplementedError,
            OSError) as error:  # NotImplementedError: zipfile, on a garbled header
        raise ValueError(f"cannot read {path}: the file is damaged (e.g. truncated) or not a "
                         f"minigrad training checkpoint ({type(error).__name__}: {error})"
                         ) from error
    except ValueError as error:  # an .npz, but not (or no longer) a whole checkpoint
        raise ValueError(f"{path} is not a minigrad training checkpoint or is damaged "
                         f"({error}); {weights_hint}") from error
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a minigrad training checkpoint; {weights_hint}")
    _checkpoint_version(state, path)
    return state


def _checkpoint_version(state, source):
    """The format version of a checkpoint ``state`` read from ``source`` (1 when it has
    none); a version this code does not know, e.g. from a newer minigrad, is a
    ValueError naming ``source``."""
    version = state.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{source}: unknown training checkpoint version {version!r}")
    if version > _CHECKPOINT_VERSION:
        raise ValueError(f"{source} was written by a newer minigrad (training checkpoint "
                         f"version {version}; this one reads up to {_CHECKPOINT_VERSION}); "
                         f"upgrade minigrad to resume it")
    return version


def _first_nonfinite(named_arrays):
    """``(name, value)`` of the first NaN/inf among ``(name, array)`` pairs, or None.

    One reduction per floating array and a single host read for all of them (one
    synchronisation on a GPU); the search for the value runs only when one is bad.
    """
    named = [(name, array) for name, array in named_arrays if array.dtype.kind == "f"]
    if not named:
        return None
    xp = backend.array_module(named[0][1])
    finite = backend.to_numpy(xp.stack([xp.isfinite(array).all() for _, array in named]))
    for (name, array), ok in zip(named, finite):
        if not ok:
            values = backend.to_numpy(array).reshape(-1)
            return name, float(values[~np.isfinite(values)][0])
    return None


def _check_weights(run):
    """Raise :class:`TrainingDiverged` if the epoch's updates left a NaN/inf weight.

    The loss of every step is checked before its update, but the update of an
    epoch's last step (or, between GPU checks, of any step) is seen by no loss:
    this check at the epoch's end keeps such weights out of the callbacks and
    checkpoints.
    """
    bad = _first_nonfinite((name, p.data) for name, p in run.model.named_parameters())
    if bad is not None:
        name, value = bad
        _raise_diverged(run, run.step, value,
                        f"parameter {name!r} became {value} during epoch {run.epoch + 1}/"
                        f"{run.epochs} (found after its last step)")


def _refuse_nonfinite_weights(run, state_dict, path):
    bad = _first_nonfinite(state_dict.items())
    if bad is not None:
        name, value = bad
        _raise_diverged(run, run.step, value,
                        f"{name!r} holds {value} after epoch {run.epoch + 1}/{run.epochs}, "
                        f"so {path} was not written")


def _raise_diverged(run, step, value, problem=None):
    """Raise :class:`TrainingDiverged`; ``problem`` says what went wrong (default: the
    loss of ``step`` became ``value``)."""
    lr = run.lr()
    if problem is None:
        where = f"epoch {run.epoch + 1}/{run.epochs}, step {step + 1}"
        if run.steps:
            where += f"/{run.steps}"
        problem = f"the loss became {value} at {where}"
    message = (f"training stopped: {problem} (learning rate {lr:g}). A learning rate that "
               f"is too high is the usual cause: try a smaller one (e.g. {lr / 10:g}); "
               f"inputs with NaN/inf values or a loss that does not suit the outputs can do "
               f"it too.")
    if run.last_checkpoint:
        message += f" The last good checkpoint, {run.last_checkpoint}, is intact."
    raise TrainingDiverged(message, epoch=run.epoch + 1, step=step + 1, value=value, lr=lr,
                           checkpoint=run.last_checkpoint)


# --------------------------------------------------------------------------- callbacks
class Callback:
    """Base class for hooks into :func:`fit`; override the methods you need.

    ``self.run`` is the :class:`TrainingRun` (``self.model`` its model). Callbacks
    run in ascending ``order`` (schedules 10, default 50, checkpoints 90, progress
    display 100), each hook in turn. At an epoch's end, in this order:

    1. fit checks the weights and the validation loss (NaN/inf raises
       :class:`TrainingDiverged` before any callback runs);
    2. the epoch's metrics go into ``self.run.history``: from here on the epoch
       counts as done, in the history and in a checkpoint written by any hook;
    3. every :meth:`on_epoch_end`, each followed by recording into that history
       entry the numbers the callback added to (or changed in) ``logs``; values
       that are not numbers stay in ``logs`` only, with a warning;
    4. every :meth:`on_checkpoint`: a checkpoint written there holds the state
       every callback reached that epoch, whatever the order.

    ``epoch`` and ``step`` count from 0. ``logs`` at an epoch's end holds that
    epoch's metrics; at a batch's end ``{"size": batch size}`` (call
    ``self.run.running_logs()`` for the running loss and accuracy).
    A callback with state worth resuming returns it from :meth:`state_dict` and
    resets it in :meth:`set_run`, so that every ``fit`` starts afresh (a resumed
    run loads the saved state after that).
    """

    order = 50
    run = None
    model = None

    def set_run(self, run):
        """Called at the start of every ``fit``, before a resumed run loads its state."""
        self.run = run
        self.model = run.model

    def on_train_begin(self, logs=None):
        """Before the first epoch."""

    def on_train_end(self, logs=None):
        """After the last epoch (not when training fails)."""

    def on_epoch_begin(self, epoch, logs=None):
        """Before each epoch."""

    def on_epoch_end(self, epoch, logs=None):
        """After each epoch (already in ``self.run.history``), with its metrics; a
        number added to ``logs`` is recorded in the history."""

    def on_checkpoint(self, epoch, logs=None):
        """After every callback's :meth:`on_epoch_end`: write files here (values
        added to ``logs`` now are not recorded)."""

    def on_batch_end(self, step, logs=None):
        """After each training step."""

    def state_key(self):
        """The name of this callback's state in a checkpoint (default: the class name).

        Resuming gives each callback the state saved under its key, whatever the
        order of the list; a callback that may appear twice in a run adds what
        tells the two apart (ModelCheckpoint: its file name; EarlyStopping: its
        monitor).
        """
        return type(self).__name__

    #: Whether resuming needs this callback's saved state to continue exactly. A
    #: callback that only records something in checkpoints (the same for the whole
    #: run) sets it False: resuming a checkpoint without that record is no mismatch.
    resumes_from_state = True

    def state_dict(self):
        """State to store in checkpoints (``None``: nothing)."""
        return None

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned."""


class LearningRateScheduler(Callback):
    """Step a ``minigrad.optim.lr_scheduler`` schedule once per epoch.

    ``schedule`` is a scheduler object, or a function ``optimizer -> scheduler``
    (use that when ``fit`` builds the optimizer from its name), e.g.
    ``LearningRateScheduler(lambda opt: lr_scheduler.StepLR(opt, step_size=5))``.
    ``ReduceLROnPlateau`` is stepped with ``monitor`` (``val_loss``, or ``loss``
    without validation data). A function gives every ``fit`` a new scheduler; a
    scheduler object is the caller's and keeps its state from one ``fit`` to the
    next, as in PyTorch.
    """

    order = 10

    def __init__(self, schedule, monitor="val_loss"):
        self.schedule = schedule
        self.monitor = monitor
        self.scheduler = None

    def set_run(self, run):
        super().set_run(run)
        scheduler = self.schedule
        if not hasattr(scheduler, "step"):
            if not callable(scheduler):
                raise TypeError("LearningRateScheduler needs a scheduler or a function "
                                f"optimizer -> scheduler, got {type(scheduler).__name__}")
            scheduler = scheduler(run.optimizer)
        if getattr(scheduler, "optimizer", run.optimizer) is not run.optimizer:
            raise ValueError("LearningRateScheduler: the scheduler was built for another "
                             "optimizer than the one fit trains with; pass a function "
                             "optimizer -> scheduler instead")
        self.scheduler = scheduler

    def on_epoch_end(self, epoch, logs=None):
        if isinstance(self.scheduler, optim_module.lr_scheduler.ReduceLROnPlateau):
            key = self.monitor if self.monitor in logs else "loss"
            self.scheduler.step(logs[key])
        else:
            self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


def _monitored_score(who, monitor, sign, logs, hint=""):
    """``sign * logs[monitor]`` (higher is better); a KeyError naming ``who`` when the run
    does not log ``monitor``."""
    if monitor not in logs:
        raise KeyError(f"{who} monitors {monitor!r}, which this run does not log (it logs "
                       f"{sorted(logs)}){hint}")
    return sign * logs[monitor]


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` (the default) the model ends with the weights
    of its best epoch, not its last. ``mode``: ``"min"``, ``"max"`` or ``"auto"``
    (accuracies up, losses down). Every ``fit`` starts afresh, as in Keras (a
    resumed run continues from its checkpoint's state).
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="auto",
                 restore_best_weights=True, verbose=1):
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = abs(float(min_delta))
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self.sign = metric_sign(monitor, mode)
        self._start_afresh()

    def _start_afresh(self):
        self.best = -math.inf
        self.best_epoch = None
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    def set_run(self, run):
        super().set_run(run)
        self._start_afresh()

    def state_key(self):
        return f"EarlyStopping:{self.monitor}"

    def on_epoch_end(self, epoch, logs=None):
        score = _monitored_score("EarlyStopping", self.monitor, self.sign, logs,
                                 "; give fit validation data or monitor 'loss'")
        if score > self.best + self.min_delta:
            self.best, self.best_epoch, self.wait = score, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.run.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            print(f"Early stopping after epoch {self.stopped_epoch + 1}: {self.monitor} has "
                  f"not improved for {self.patience} epochs (best at epoch "
                  f"{self.best_epoch + 1}: {self.sign * self.best:.4f})")
        last = self.run.history.epoch[-1] if self.run.history.epoch else None
        if self.restore_best_weights and self.best_weights is not None \
                and self.best_epoch != last:
            self.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"Restored the weights of epoch {self.best_epoch + 1}")

    def state_dict(self):
        state = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
        if self.best_weights is not None:
            state["best_weights"] = dict(self.best_weights)
        return state

    def load_state_dict(self, state):
        self.best = float(state["best"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.wait = int(state["wait"])
        self.best_weights = state.get("best_weights")


class ModelCheckpoint(Callback):
    """Save the run after each epoch, atomically, so it can be resumed.

    ``filepath`` may hold ``{epoch}`` and metric names (``"ckpt-{epoch:02d}.npz"``);
    ``save_best_only`` writes only when ``monitor`` improves (on the best value
    of this ``fit``; a resumed run continues from the checkpoint's best);
    ``weights_only`` writes just the model's weights (``Module.save`` format,
    loadable with ``model.load``) instead of the full resumable state. The file is
    written in :meth:`on_checkpoint`, after every callback has updated its state
    for the epoch. Weights holding NaN or infinity are never written.
    """

    order = 90

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 weights_only=False, verbose=0):
        self.filepath = str(filepath)
        self.monitor = monitor
        self.save_best_only = save_best_only
        self.weights_only = weights_only
        self.verbose = verbose
        self.sign = metric_sign(monitor, mode)
        self.best = -math.inf
        self._due = False  # whether this epoch is to be written

    def set_run(self, run):
        super().set_run(run)
        self.best, self._due = -math.inf, False

    def state_key(self):
        # The file name, not the whole path: a run moved to another folder still resumes.
        return f"ModelCheckpoint:{os.path.basename(self.filepath)}"

    def on_epoch_end(self, epoch, logs=None):
        # Decide (and update the best) now, write in on_checkpoint: a checkpoint written
        # by another ModelCheckpoint this epoch then holds this one's new best.
        self._due = True
        if self.save_best_only:
            score = _monitored_score("ModelCheckpoint", self.monitor, self.sign, logs)
            self._due = score > self.best
            if self._due:
                self.best = score

    def on_checkpoint(self, epoch, logs=None):
        if not self._due:
            return
        self._due = False
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.weights_only:
            _refuse_nonfinite_weights(self.run, self.model.state_dict(), path)
            self.model.save(path)
        else:
            save_checkpoint(path, self.run)
        if self.verbose:
            print(f"saved {path}")

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = float(state["best"])


class ProgressLogger(Callback):
    """The progress display: a bar per epoch and one summary line per epoch.

    ``verbose=1``: bar (tqdm if installed, else a one-line printer) with running
    loss, accuracy and images per second, then the summary line; ``verbose=2``:
    summary lines only. ``fit`` adds one itself unless ``verbose=0``.
    """

    order = 100

    def __init__(self, verbose=1, print_fn=print, kind="auto", refresh=0.2):
        self.verbose = verbose
        self.print_fn = print_fn
        self.kind = kind
        self.refresh = refresh
        self.bar = None
        self._last = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose == 1:
            from .data.progress import progress_bar
            self.bar = progress_bar(total=self.run.steps, desc=f"Epoch {epoch + 1}/"
                                    f"{self.run.epochs}", unit="batch", kind=self.kind)
            self._last = 0.0

    def on_batch_end(self, step, logs=None):
        if self.bar is None:
            return
        self.bar.update(1)
        now = time.perf_counter()
        if now - self._last >= self.refresh or step + 1 == self.run.steps:
            self._last = now
            running = self.run.running_logs()
            text = f"loss {running['loss']:.4f}"
            if "accuracy" in running:
                text += f" acc {running['accuracy']:.3f}"
            text += f" {self.run.images_per_second():.0f} img/s"
            self.bar.set_postfix(text)
        if step + 1 == self.run.steps:
            self.close()  # before validation, so other callbacks' messages print cleanly

    def on_epoch_end(self, epoch, logs=None):
        self.close()
        if self.verbose:
            self.print_fn(format_epoch(epoch, self.run.epochs, logs))

    def close(self):
        """Close the bar of the epoch in progress, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_train_end(self, logs=None):
        self.close()


def format_epoch(epoch, epochs, logs):
    """The one-line summary of an epoch, as the progress display prints it."""
    parts = [f"Epoch {epoch + 1}/{epochs}", f"{logs.get('seconds', 0):.1f}s"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs and not math.isnan(logs[key]):
            parts.append(f"{key} {logs[key]:.4f}")
    if "lr" in logs:
        parts.append(f"lr {logs['lr']:.2g}")
    if "images_per_second" in logs:
        parts.append(f"{logs['images_per_second']:.0f} img/s")
    return " - ".join(parts)


# --------------------------------------------------------------------------- fit
def _make_optimizer(model, optimizer, lr, **kwargs):
    """``optimizer`` built by name over the model's parameters (``kwargs`` passed on),
    or checked as an optimizer object whose rates ``lr``, if given, replaces."""
    if isinstance(optimizer, str):
        return optim_module.get(optimizer, model.parameters(), lr=1e-3 if lr is None else lr,
                                **kwargs)
    if kwargs:
        raise TypeError("optimizer keyword arguments apply only when the optimizer is given "
                        f"by name, got {sorted(kwargs)}")
    if not hasattr(optimizer, "step") or not hasattr(optimizer, "param_groups"):
        raise TypeError(f"optimizer must be a name ({', '.join(sorted(optim_module.OPTIMIZERS))}) "
                        f"or an optimizer object, got {type(optimizer).__name__}")
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    return optimizer


def fit(model, train_loader, val_loader=None, loss="cross_entropy", optimizer="adam",
        lr=None, epochs=10, scheduler=None, callbacks=(), resume=None, verbose=1,
        device=None, cuda_graph=False):
    """Train ``model`` on ``train_loader`` for ``epochs`` epochs; returns a :class:`History`.

    Parameters
    ----------
    model : a ``minigrad.nn.Module``
    train_loader, val_loader : ``DataLoader`` s yielding ``(x, y)``; validation
        (optional) runs after every epoch without gradients
    loss : a registry name (``"cross_entropy"``, ``"mse"``, ``"hinge"``, ...) or a
        callable ``loss(output, target)``; integer labels become one-hot for the
        losses that compare outputs with same-shaped targets (MSE, MAE, Huber,
        logistic)
    optimizer : a registry name (``"adam"``, ``"sgd"``, ``"rmsprop"``, ``"adagrad"``,
        ``"adamw"``) built with ``lr`` (default 1e-3), or an optimizer object
        (``lr``, if given, overrides its groups' rates)
    epochs : total epochs (a resumed run continues up to this number)
    scheduler : a ``minigrad.optim.lr_scheduler`` scheduler, or a function
        ``optimizer -> scheduler``; stepped after every epoch
        (``ReduceLROnPlateau`` with the validation loss)
    callbacks : :class:`Callback` objects
    resume : path of a checkpoint written by :class:`ModelCheckpoint`: continue
        that run (model, optimizer, schedule, history, callbacks, random state)
    verbose : 0 silent, 1 progress bar and a line per epoch, 2 a line per epoch
    device : where to train (default: where the model's parameters are)
    cuda_graph : on "cuda", capture forward, backward and optimizer step once in a
        CUDA graph and replay it for every full-size batch (the last, smaller batch
        runs eagerly); a NaN loss is then caught after that step's update

    At each epoch's end fit checks the weights and the validation loss, appends
    the epoch to the history, then calls every callback's ``on_epoch_end``
    (recording the numbers each adds to ``logs``), then every ``on_checkpoint``
    (see :class:`Callback`).

    Raises :class:`TrainingDiverged` when the loss, the validation loss or a
    weight becomes NaN or infinite (weights are checked at every epoch's end,
    before any callback, so no checkpoint is written with them).
    """
    if int(epochs) != epochs or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    device = backend.check_device(device or model.device)
    if cuda_graph and device != "cuda":
        raise ValueError(f"fit: cuda_graph=True needs device 'cuda', not {device!r}")
    if model.device != device:
        model.to(device)
    loss_fn = losses_module.get(loss)
    if not callable(loss_fn):
        raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")
    opt = _make_optimizer(model, optimizer, lr)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback objects, got {type(cb).__name__}")
    if scheduler is not None:
        callbacks.append(LearningRateScheduler(scheduler))
    if verbose:
        callbacks.append(ProgressLogger(verbose))
    callbacks.sort(key=lambda cb: cb.order)  # stable: user order kept within a rank

    history = History(params={"epochs": int(epochs), "loss": _describe(loss),
                              "optimizer": _describe(optimizer), "device": device})
    run = TrainingRun(model, opt, loss_fn, train_loader, val_loader, int(epochs), device,
                      callbacks, history, cuda_graph=cuda_graph)
    for cb in callbacks:
        cb.set_run(run)
    start_epoch = 0
    if resume is not None:
        if not os.path.exists(resume):
            raise FileNotFoundError(f"cannot resume: checkpoint {str(resume)!r} does not exist")
        start_epoch = run.restore(load_checkpoint(resume), source=str(resume))
        run.last_checkpoint = str(resume)
    history.params.update(lr=run.lr(), batch_size=getattr(train_loader, "batch_size", None),
                          steps=run.steps)
    check_every = 1 if device == "cpu" else 20
    left_out = set()  # keys of logs that are not numbers, warned about once
    progress = next((cb for cb in callbacks if isinstance(cb, ProgressLogger)), None)
    try:
        for cb in callbacks:
            cb.on_train_begin()
        for epoch in range(start_epoch, int(epochs)):
            run.epoch = epoch
            if hasattr(train_loader, "set_epoch"):
                train_loader.set_epoch(epoch)  # order of epoch e comes from (seed, e)
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            epoch_lr = run.lr()  # after on_epoch_begin, which may set it (a warm-up)
            start = time.perf_counter()
            logs = _train_epoch(run, check_every)
            train_seconds = time.perf_counter() - start
            # Nothing non-finite reaches the callbacks, so no checkpoint holds it.
            _check_weights(run)
            if val_loader is not None:
                result = evaluate(model, val_loader, loss=loss_fn, device=device)
                if not math.isfinite(result.loss):
                    _raise_diverged(run, run.step, result.loss,
                                    f"the validation loss became {result.loss} after epoch "
                                    f"{epoch + 1}/{run.epochs}")
                logs["val_loss"] = result.loss
                if result.accuracy is not None:
                    logs["val_accuracy"] = result.accuracy
            logs["lr"] = epoch_lr
            logs["seconds"] = time.perf_counter() - start
            logs["images_per_second"] = run.images_seen / max(train_seconds, 1e-9)
            # Recorded before the callbacks, so that at every epoch-end hook the history
            # (and a checkpoint's "epoch", its length) counts this epoch as done.
            history.append(epoch, logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
                _record_callback_logs(history, logs, cb, left_out)
            for cb in callbacks:
                cb.on_checkpoint(epoch, logs)  # every state is updated: now write files
            if run.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
    finally:
        if progress is not None:
            progress.close()
        run.meter = None
    return history


def _is_number(value):
    """Whether ``value`` is a real number (a Python or NumPy scalar, or a 0-d array)."""
    if isinstance(value, numbers.Real):
        return True
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return getattr(value, "ndim", None) == 0 and kind in ("b", "i", "u", "f")


def _record_callback_logs(history, logs, callback, left_out):
    """Put into the history's last epoch the numbers in ``logs`` after ``callback``'s
    ``on_epoch_end`` (what it added or changed, as Keras records them).

    A value that is not a number is left out of the history (the callbacks after
    this one still see it in ``logs``), with one warning per key per ``fit``.
    """
    numbers_only = {}
    for key, value in logs.items():
        if _is_number(value):
            numbers_only[key] = value
        elif key not in left_out:
            left_out.add(key)
            warnings.warn(f"fit: {type(callback).__name__}.on_epoch_end put a "
                          f"{type(value).__name__} in logs[{key!r}], not a number; the History "
                          f"records only numbers, so it leaves {key!r} out", stacklevel=3)
    history.update_last(numbers_only)


def _train_epoch(run, check_every):
    """One pass over the training data; returns its running loss and accuracy."""
    model, opt, loss_fn = run.model, run.optimizer, run.loss_fn
    run.meter = _EpochMeter(check_every)
    run.epoch_start, run.images_seen = time.perf_counter(), 0
    model.train()
    for step, batch in enumerate(run.train_loader):
        run.step = step
        x, y = _split_batch(batch, run.device)
        if run.cuda_graph:  # forward, backward and update in one replay
            if run.graphed is None:
                from .cuda import graphed_step
                run.graphed = graphed_step(
                    model, lambda out, t: loss_fn(out, _loss_target(loss_fn, out, t)), opt, x, y)
            loss_value = run.graphed(x, y)
            output = run.graphed.output
        else:
            output = model(x)
            loss_value = loss_fn(output, _loss_target(loss_fn, output, y))
        correct = None
        if y.dtype.kind in "iu":
            correct = (_predicted_classes(loss_fn, output) == y.data.reshape(-1)).sum()
        run.meter.add(step, loss_value.data, correct, x.shape[0])
        if run.meter.due():
            # An eager step is checked before its update, so the weights stay good; a
            # CUDA-graph replay has already applied its update by now.
            bad = run.meter.flush()
            if bad is not None:
                _raise_diverged(run, *bad)
        if not run.cuda_graph:
            opt.zero_grad()
            loss_value.backward()
            opt.step()
        run.images_seen += x.shape[0]
        for cb in run.callbacks:
            cb.on_batch_end(step, {"size": x.shape[0]})
    logs = run.running_logs()
    if run.meter.seen == 0:
        loader = run.train_loader
        raise ValueError(f"the training loader yielded no batches in epoch {run.epoch + 1} "
                         f"(a dataset of {len(getattr(loader, 'dataset', []))} samples with "
                         f"batch_size {getattr(loader, 'batch_size', '?')} and drop_last?)")
    return logs


def _describe(value):
    if isinstance(value, str):
        return value
    return type(value).__name__


# --------------------------------------------------------------------------- evaluation
class Evaluation(NamedTuple):
    """Result of :func:`evaluate`: mean loss, accuracy (None without class labels),
    and the confusion matrix (rows: true class, columns: predicted class)."""
    loss: float
    accuracy: "float | None"
    confusion: "np.ndarray | None"


def evaluate(model, loader, loss="cross_entropy", device=None):
    """Loss, accuracy and confusion matrix of ``model`` over ``loader`` (no gradients).

    The model is put in eval mode for the pass and returned to its previous mode.
    ``accuracy`` is the fraction of predictions (argmax, or a threshold for a single
    output) equal to the label, as in ``fit``. The confusion matrix has one row and
    column per class of the loader's dataset (``dataset.classes``), or per output
    of the model where it has more (then the extra columns count predictions of
    classes the dataset does not have).
    """
    device = backend.check_device(device or model.device)
    loss_fn = losses_module.get(loss)
    was_training = model.training
    model.eval()
    losses_pending, labels_pending, predicted_pending = [], [], []
    try:
        with no_grad():
            for batch in loader:
                x, y = _split_batch(batch, device)
                output = model(x)
                value = loss_fn(output, _loss_target(loss_fn, output, y))
                losses_pending.append((value.data, x.shape[0]))
                if y.dtype.kind in "iu":  # kept on the device, read back once at the end
                    labels_pending.append(y.data.reshape(-1))
                    predicted_pending.append(_predicted_classes(loss_fn, output))
    finally:
        model.train(was_training)
    if not losses_pending:
        raise ValueError("evaluate: the loader yielded no batches")
    xp = backend.array_module(losses_pending[0][0])
    values = backend.to_numpy(xp.stack([v for v, _ in losses_pending])).astype(np.float64)
    sizes = np.array([n for _, n in losses_pending], dtype=np.float64)
    total_loss, seen = float((values * sizes).sum()), float(sizes.sum())
    accuracy = confusion = None
    if labels_pending:
        labels = backend.to_numpy(xp.concatenate(labels_pending)).astype(np.int64)
        predicted = backend.to_numpy(xp.concatenate(predicted_pending)).astype(np.int64)
        accuracy = float(np.mean(predicted == labels))
        confusion = _confusion_matrix(labels, predicted, loader, output)
    return Evaluation(total_loss / seen, accuracy, confusion)


def predict(model, data, batch_size=32, device=None):
    """The model's outputs (e.g. logits) for ``data`` as a NumPy array.

    ``data`` is a loader (its inputs are used), a dataset, or an array/Tensor of
    inputs; batches of ``batch_size``. ``predict(...).argmax(1)`` gives classes.
    """
    from .data import DataLoader
    device = backend.check_device(device or model.device)
    if isinstance(data, (np.ndarray, Tensor)) or hasattr(data, "__array__"):
        array = data.data if isinstance(data, Tensor) else data
        batches = ((as_tensor(array[i:i + batch_size]),)
                   for i in range(0, len(array), batch_size))
    elif hasattr(data, "__iter__") and not hasattr(data, "__getitem__"):
        batches = data
    else:
        batches = DataLoader(data, batch_size=batch_size, shuffle=False, seed=0)
    outputs = []
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                x = x if isinstance(x, Tensor) else as_tensor(x)
                if x.device != device:
                    x = x.to(device)
                outputs.append(backend.to_numpy(model(x).data))
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("predict: no inputs")
    return np.concatenate(outputs)
