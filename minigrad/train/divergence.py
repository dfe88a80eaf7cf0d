"""Stopping a run whose loss, validation loss or weights turn NaN or infinite, and the
warning for a loss that climbs far above where it started (:class:`DivergenceWarning`,
raised by :class:`~minigrad.train.callbacks.WarnOnDivergence`)."""
import numpy as np

from .. import backend


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


class DivergenceWarning(RuntimeWarning):
    """The training loss climbed far above where the run started: still finite, but the
    steps overshoot (a learning rate too large, most often)."""


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
