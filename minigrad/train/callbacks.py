"""Callbacks: hooks into :func:`fit` (schedules, early stopping, checkpoints, progress)."""
import math
import os
import time
import warnings

from .. import optim as optim_module
from .checkpoint import save_checkpoint
from .divergence import DivergenceWarning, _refuse_nonfinite_weights
from .history import metric_sign


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
        if not self.run.is_main:  # distributed: rank 0 alone writes, the others hold the same
            return
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


class WarnOnDivergence(Callback):
    """Warn when an epoch's training loss ends far above where the run started.

    A NaN or infinite loss stops training (:class:`TrainingDiverged`); a loss that
    stays finite while it climbs (``--lr 100`` reaching 1e16) would otherwise go
    unremarked. The start is the loss of the run's first batch (read once); when an
    epoch's mean training loss exceeds ``factor`` times it, a
    :class:`DivergenceWarning` names the epoch, the two losses and the learning rate,
    once per run. ``diverged_epoch`` (1-based) and ``message`` record it (``None``
    until then). ``fit`` adds one unless its callbacks hold one already.
    """

    order = 80  # before the checkpoints, which store its state
    resumes_from_state = False  # a checkpoint without it (an older one) resumes quietly

    def __init__(self, factor=10.0):
        if not factor > 1:
            raise ValueError(f"WarnOnDivergence: factor must be > 1, got {factor}")
        self.factor = float(factor)
        self._start_afresh()

    def _start_afresh(self):
        self.start = None
        self.diverged_epoch = None
        self.message = None

    def set_run(self, run):
        super().set_run(run)
        self._start_afresh()

    def on_batch_end(self, step, logs=None):
        if self.start is None:  # the first batch of the run: its loss is the start
            self.start = self.run.running_logs().get("loss")

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if self.diverged_epoch is not None or self.start is None or loss is None \
                or not math.isfinite(loss) or not self.start > 0:
            return
        if loss > self.factor * self.start:
            self.diverged_epoch = epoch + 1
            self.message = (f"the training loss of epoch {epoch + 1} ({loss:.4g}) is "
                            f"{loss / self.start:.3g} times its start ({self.start:.4g}): "
                            f"training is diverging; lower the learning rate (it is "
                            f"{logs.get('lr', self.run.lr()):g})")
            warnings.warn(self.message, DivergenceWarning, stacklevel=2)

    def state_dict(self):
        return {"start": self.start, "diverged_epoch": self.diverged_epoch,
                "message": self.message}

    def load_state_dict(self, state):
        self.start = None if state.get("start") is None else float(state["start"])
        epoch = state.get("diverged_epoch")
        self.diverged_epoch = None if epoch is None else int(epoch)
        self.message = state.get("message")


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
            from ..data.progress import progress_bar
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
