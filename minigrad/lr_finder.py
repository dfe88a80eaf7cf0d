"""The learning-rate range test ("LR finder"): grow the lr every step, watch the loss.

Train for ``steps`` mini-batches while the learning rate grows geometrically from
``start_lr`` to ``end_lr``. At first the lr is too small to change anything, then the
loss falls faster and faster, and past some lr the steps overshoot and the loss
blows up. The suggested lr is where the smoothed loss falls most steeply (against
log lr) before its minimum, the usual rule of the "LR finder" (Smith 2017; fastai;
torch-lr-finder). The curve the suggestion is read from is smoothed without lag (a
centred moving average): a running average trails the loss by about
``1 / (1 - smooth)`` steps, which on a short test moves its steepest descent and its
minimum an order of magnitude or more to the right of where the loss itself has them.
The model, the optimizer, minigrad's random state and a DataLoader's epoch counter
are put back as they were, so the test can precede training (or a sweep) without
changing it::

    result = lr_range_test(model, train_loader, loss="cross_entropy", optimizer="adam")
    optimizer = optim.Adam(model.parameters(), lr=result.suggested_lr)
"""
import collections.abc
import math
from dataclasses import dataclass

import numpy as np

from . import losses as mg_losses
from . import random as mg_random
from . import train
from .train.step import EagerStep

__all__ = ["LRFinderResult", "lr_range_test", "suggest_lr", "smooth_losses",
           "blow_up_index"]


@dataclass
class LRFinderResult:
    """What the range test saw, one entry per step taken.

    ``lrs[i]`` is the lr of step ``i`` and ``losses[i]`` the loss of its batch;
    ``smoothed_losses`` their centred moving average (:func:`smooth_losses`, no lag).
    ``suggested_lr`` is the lr of steepest descent of the smoothed loss (before its
    minimum); ``min_loss_lr`` the lr at the smoothed minimum; ``diverged_lr`` the lr
    at which the loss blew up: where the test stopped (a loss not finite, or its
    running average past ``diverge_factor`` times its best), else where the smoothed
    loss climbed back above where it started (see :func:`blow_up_index`); ``None``
    if it did neither. ``stopped`` says whether the test stopped early.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed_losses: np.ndarray
    suggested_lr: float
    min_loss_lr: float
    diverged_lr: float | None
    start_lr: float
    end_lr: float
    stopped: bool = False

    @classmethod
    def from_losses(cls, lrs, losses, start_lr, end_lr, stopped_at=None):
        """The result of a test that took steps at ``lrs`` with batch ``losses`` and
        stopped at lr ``stopped_at`` (``None``: ran to ``end_lr``): smoothed, the
        suggestion and the blow-up read from the smoothed curve."""
        lrs, losses = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
        smoothed = smooth_losses(losses)
        diverged_lr = stopped_at
        if stopped_at is None:
            climbed = blow_up_index(smoothed)
            diverged_lr = None if climbed is None else float(lrs[climbed])
        return cls(lrs=lrs, losses=losses, smoothed_losses=smoothed,
                   suggested_lr=suggest_lr(lrs, smoothed),
                   min_loss_lr=float(lrs[int(np.argmin(smoothed))]),
                   diverged_lr=diverged_lr, start_lr=float(start_lr), end_lr=float(end_lr),
                   stopped=stopped_at is not None)

    @property
    def diverged(self):
        """Whether the loss blew up (see ``diverged_lr``)."""
        return self.diverged_lr is not None

    @property
    def has_suggestion(self):
        """Whether the curve supports ``suggested_lr``: the smoothed loss fell clearly
        (by a tenth of its start) to a minimum past the first step. Otherwise the
        suggestion is the steepest step of noise, and :meth:`summary` says so."""
        return int(np.argmin(self.smoothed_losses)) > 0 and _fell(self.smoothed_losses)

    def summary(self):
        """One line that says what the curve shows: the suggestion, the lowest smoothed
        loss, and past it a blow-up, a climb, or a loss still falling at the end."""
        smoothed = self.smoothed_losses
        lowest = int(np.argmin(smoothed))
        if self.stopped:
            after = f"the loss blew up at lr {self.diverged_lr:.3g}, where the test stopped"
        elif not _fell(smoothed):
            after = f"it ends at {smoothed[-1]:.4g} at lr {self.lrs[-1]:.3g}"
        elif self.diverged:
            after = (f"the smoothed loss climbs from lr {self.min_loss_lr:.3g} on and blew "
                     f"up (back above its start, {smoothed[0]:.4g}) at lr "
                     f"{self.diverged_lr:.3g}")
        elif _climbs(smoothed, lowest):
            after = (f"the smoothed loss climbs from lr {self.min_loss_lr:.3g} on, to "
                     f"{smoothed[-1]:.4g} at lr {self.lrs[-1]:.3g}")
        else:
            after = (f"the smoothed loss still falls at lr {self.lrs[-1]:.3g}: a larger "
                     f"end_lr would show where it turns")
        if lowest == 0:
            first = (f"no suggestion: the smoothed loss never fell below its start "
                     f"({smoothed[0]:.4g}), so every lr tried is already too large or the "
                     f"test too short")
        elif not _fell(smoothed):
            first = (f"no clear suggestion: the smoothed loss hardly fell (from "
                     f"{smoothed[0]:.4g}), so its steepest descent (lr "
                     f"{self.suggested_lr:.3g}) may be noise; try more steps or other lrs")
        else:
            first = (f"suggested lr {self.suggested_lr:.3g} (steepest descent of the "
                     f"smoothed loss, before its minimum)")
        return (f"{first}; lowest smoothed loss {smoothed[lowest]:.4g} at lr "
                f"{self.min_loss_lr:.3g}; {after} ({len(self.lrs)} steps from "
                f"{self.start_lr:.3g})")


def _fell(smoothed, fraction=0.1):
    """Whether the smoothed loss fell from its start by more than ``fraction`` of it:
    less is what batch-to-batch noise does on a flat stretch."""
    return smoothed[0] - smoothed.min() > fraction * abs(smoothed[0])


def _climbs(smoothed, lowest, tolerance=0.05):
    """Whether the smoothed loss ends clearly above its minimum: by more than
    ``tolerance`` of the distance it fell from its start (or of the minimum itself)."""
    fell = max(smoothed[0] - smoothed[lowest], tolerance * abs(smoothed[lowest]), 1e-12)
    return smoothed[-1] - smoothed[lowest] > tolerance * fell


def smooth_losses(losses, window=0.05):
    """A centred moving average of ``losses``: the mean over steps i - k .. i + k,
    k = ``window`` times the number of steps (at least 1), fewer at the ends.

    Centred, so the smoothed curve has no lag: its minimum and steepest descent sit
    at the lrs where the loss has them (a running average would put them later).
    """
    losses = np.asarray(losses, dtype=np.float64)
    k = max(1, int(round(window * losses.size)))
    sums = np.concatenate([[0.0], np.cumsum(losses)])
    index = np.arange(losses.size)
    low, high = np.maximum(index - k, 0), np.minimum(index + k + 1, losses.size)
    return (sums[high] - sums[low]) / (high - low)


def blow_up_index(smoothed):
    """The first step after the smoothed minimum at which the smoothed loss is back
    above where it started (all the progress undone), or ``None``; a loss that never
    fell clearly below its start (by a tenth of it) has nothing to undo."""
    smoothed = np.asarray(smoothed, dtype=np.float64)
    lowest = int(np.argmin(smoothed))
    if lowest == 0 or not _fell(smoothed):
        return None
    above = np.flatnonzero(smoothed[lowest:] > smoothed[0])
    return None if above.size == 0 else lowest + int(above[0])


def suggest_lr(lrs, smoothed_losses, skip_start=0.1, window=0.05):
    """The lr where ``smoothed_losses`` falls most steeply against log(lr).

    Only the stretch up to the lowest smoothed loss counts (beyond it the loss is
    climbing towards divergence), and the first ``skip_start`` fraction of the
    steps is left out: the moving average has seen only a few batches there. The
    slope at step i is taken across steps i - k .. i + k, k = ``window`` times the
    number of steps (at least 1): between two neighbouring steps the change is mostly
    batch-to-batch noise, and the steepest neighbour pair would be a noise spike.
    If the loss rose from the start, the first lr is returned: everything tried
    was already too big.
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    smoothed = np.asarray(smoothed_losses, dtype=np.float64)
    if lrs.shape != smoothed.shape or lrs.ndim != 1 or lrs.size == 0:
        raise ValueError(f"lrs and smoothed_losses must be equally long and non-empty, got "
                         f"shapes {lrs.shape} and {smoothed.shape}")
    if not 0 <= skip_start < 1:
        raise ValueError(f"skip_start must be a fraction in [0, 1), got {skip_start}")
    lowest = int(np.argmin(np.where(np.isfinite(smoothed), smoothed, np.inf)))
    first = int(skip_start * lrs.size)
    if lowest - first < 2:  # too little left after skipping: use the whole descent
        first = 0
    if lowest - first < 2:
        return float(lrs[0])
    k = max(1, min(int(round(window * lrs.size)), (lowest - first) // 2))
    centre = np.arange(first + k, lowest - k + 1)
    log_lrs = np.log(lrs)
    slope = ((smoothed[centre + k] - smoothed[centre - k])
             / (log_lrs[centre + k] - log_lrs[centre - k]))
    return float(lrs[centre[int(np.argmin(slope))]])


def _cycle(batches):
    """Yield ``(x, y)`` batches forever, starting the iterable over when it runs out.

    A one-shot iterator (a generator) cannot start over, so its batches are kept
    as they pass and replayed.
    """
    empty = ValueError("lr_range_test: the batches are empty (the iterable yielded nothing)")
    if isinstance(batches, collections.abc.Iterator):
        kept = []
        for batch in batches:
            kept.append(batch)
            yield batch
        if not kept:
            raise empty
        while True:
            yield from kept
    while True:
        source = iter(batches)
        count = 0
        try:
            for batch in source:
                count += 1
                yield batch
        finally:
            if hasattr(source, "close"):
                source.close()  # stops a DataLoader's prefetch thread mid-epoch
        if count == 0:
            raise empty


class _LossNotFinite(Exception):
    """A step's loss was NaN or infinite (raised before that step's update)."""


def _stop_unless_finite(loss, output):
    """The step's check: stop it before its update when the loss is not finite."""
    if not math.isfinite(float(loss.item())):
        raise _LossNotFinite


def _as_pair(batch, index, device):
    """``(x, y)`` Tensors on ``device``, as ``fit`` takes them from its batches."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        length = f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""
        raise TypeError(f"lr_range_test: batch {index} is a {type(batch).__name__}{length}; "
                        f"expected an (inputs, targets) pair")
    return train.split_batch(batch, device)


def lr_range_test(model, loader_or_batches, loss="cross_entropy", optimizer="adam",
                  start_lr=1e-7, end_lr=10, steps=100, smooth=0.98, diverge_factor=4,
                  **optimizer_kwargs):
    """Run the learning-rate range test on ``model``; returns an :class:`LRFinderResult`.

    ``loader_or_batches``: any iterable of ``(x, y)`` batches of minigrad Tensors
    (a ``DataLoader``, a list, a generator); it is started over when it runs out.
    ``loss``: a registry name or a callable ``loss(output, target)``; as in ``fit``,
    integer labels become one-hot for the losses that compare outputs with
    same-shaped targets (MSE, MAE, Huber, logistic).
    ``optimizer``: a registry name (built over ``model.parameters()`` with
    ``optimizer_kwargs``) or an existing optimizer over the model's parameters.
    The lr goes from ``start_lr`` to ``end_lr`` geometrically over ``steps``
    steps; the test stops early once the running average of the loss (weight
    ``smooth`` on the past: the one smoothing available while the test runs)
    exceeds ``diverge_factor`` times its lowest value, or the loss is not finite.
    The result's curve and suggestion use the centred average of
    :func:`smooth_losses` instead, which does not lag.

    Afterwards the model's weights, buffers, gradients and train/eval mode, the
    optimizer's state (when one was passed in), minigrad's random state and the
    loader's epoch (a ``DataLoader``'s shuffling order) are all restored to what
    they were.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_range_test: need 0 < start_lr < end_lr, got start_lr={start_lr}, "
                         f"end_lr={end_lr}")
    if int(steps) != steps or steps < 2:
        raise ValueError(f"lr_range_test: steps must be an integer >= 2, got {steps!r}")
    if not 0 <= smooth < 1:
        raise ValueError(f"lr_range_test: smooth must be in [0, 1), got {smooth}")
    if not diverge_factor > 1:
        raise ValueError(f"lr_range_test: diverge_factor must be > 1, got {diverge_factor}")
    if "lr" in optimizer_kwargs:
        # The test sets every step's lr itself; an lr here would also clash with the
        # start_lr the optimizer is built with.
        raise TypeError("lr_range_test: lr= is not an optimizer setting here; the test "
                        "sweeps the lr from start_lr to end_lr (set those instead)")
    steps = int(steps)
    loss_fn = mg_losses.get(loss)
    params = model.parameters()
    by_name = isinstance(optimizer, str)
    # A given optimizer keeps its rates until the loop sets them, so the state saved
    # here (and restored at the end) holds the user's own.
    opt = train.make_optimizer(model, optimizer, start_lr if by_name else None,
                                **optimizer_kwargs)
    saved_optimizer = None if by_name else opt.state_dict()
    train_step = EagerStep(model, train.with_targets(loss_fn), opt)

    saved_weights = model.state_dict()
    saved_grads = [None if p.grad is None else p.grad.copy() for p in params]
    saved_random = mg_random.get_state()
    # Each pass over a DataLoader advances its epoch, which seeds the next shuffle.
    saved_epoch = getattr(loader_or_batches, "epoch", None) \
        if hasattr(loader_or_batches, "set_epoch") else None
    was_training = model.training
    growth = (end_lr / start_lr) ** (1.0 / (steps - 1))
    lrs, raw = [], []
    average, best, diverged_lr = 0.0, math.inf, None
    batches = _cycle(loader_or_batches)
    device = model.device
    try:
        model.train()
        for step in range(steps):
            lr = start_lr * growth ** step
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = _as_pair(next(batches), step, device)
            try:
                value = float(train_step(x, y, check=_stop_unless_finite).item())
            except _LossNotFinite:
                diverged_lr = lr
                break
            average = smooth * average + (1 - smooth) * value
            current = average / (1 - smooth ** (step + 1))  # bias-corrected, as Adam's moments
            lrs.append(lr)
            raw.append(value)
            best = min(best, current)
            if current > diverge_factor * best:
                diverged_lr = lr
                break
    finally:
        batches.close()
        model.load_state_dict(saved_weights)
        for param, grad in zip(params, saved_grads):
            param.grad = grad
        model.train(was_training)
        if saved_optimizer is not None:
            opt.load_state_dict(saved_optimizer)
        mg_random.set_state(saved_random)
        if saved_epoch is not None:
            loader_or_batches.set_epoch(saved_epoch)
    if not lrs:
        raise ValueError(f"lr_range_test: the very first loss was not finite (at lr "
                         f"{start_lr:g}); check the model and the data before the lr")
    return LRFinderResult.from_losses(lrs, raw, start_lr, end_lr, stopped_at=diverged_lr)
