"""Learning-rate schedules (torch.optim.lr_scheduler's namesakes, same numbers).

A scheduler changes each parameter group's ``group["lr"]``; call its ``step()``
once per epoch (or per iteration, for a warm-up), after ``optimizer.step()``::

    scheduler = lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.1)
    for epoch in range(epochs):
        train_one_epoch(...)
        scheduler.step()

``ReduceLROnPlateau`` is stepped with the monitored metric instead:
``scheduler.step(val_loss)``.
"""
import math
import numbers

from .optimizer import Optimizer, check_number
from .state_dict import host_value


class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and writes :meth:`get_lr` into the groups.

    As in PyTorch, constructing a scheduler takes its first step (epoch 0) and
    remembers each group's starting lr in ``group["initial_lr"]`` and ``base_lrs``.
    The schedules are recursive, as PyTorch's are: each new lr is computed from the
    group's current lr, so two schedulers on one optimizer compose the same way.
    A subclass implements ``get_lr()``.

    ``last_epoch`` is accepted as PyTorch's schedulers take it, but only its default
    -1 (a fresh schedule): to resume, build the scheduler as usual and restore its
    :meth:`state_dict` with :meth:`load_state_dict`.
    """

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(optimizer)
        if last_epoch != -1:
            # PyTorch's resume-by-last_epoch differs between its schedulers: all count
            # epoch last_epoch + 1, StepLR also sets that epoch's lr, ExponentialLR,
            # CosineAnnealingLR and LinearLR keep the current one. Matching it would
            # copy that off-by-one; the state dict resumes every schedule exactly.
            raise ValueError(f"{type(self).__name__}: last_epoch={last_epoch!r} is not "
                             "supported, only the default -1 (a fresh schedule); to resume, "
                             "build the scheduler as usual, then restore its state with "
                             "scheduler.load_state_dict(saved) after "
                             "optimizer.load_state_dict(...)")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def step(self):
        """Advance one epoch and set every group's lr for it."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self):
        """The groups' learning rates for epoch ``last_epoch`` (used by :meth:`step`)."""
        raise NotImplementedError(f"{type(self).__name__} must define get_lr")

    def get_last_lr(self):
        """The learning rates the last step set, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """Everything but the optimizer: counters, base lrs and settings (plain Python values)."""
        return {name: list(value) if isinstance(value, list) else value
                for name, value in vars(self).items() if name != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict` (arrays from an ``.npz`` checkpoint are accepted).

        The optimizer's own lrs are restored by its ``load_state_dict``.
        """
        expected = set(self.state_dict())
        missing = sorted(expected - set(state_dict))
        unexpected = sorted(set(state_dict) - expected)
        if missing or unexpected:
            raise ValueError(f"{type(self).__name__}.load_state_dict: missing key(s) "
                             f"{missing}, unexpected key(s) {unexpected}")
        for name in expected:
            setattr(self, name, host_value(state_dict[name], like=getattr(self, name)))

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs.

    ``base_lr * gamma ** (epoch // step_size)``. PyTorch's ``StepLR``.
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_positive_int("StepLR", "step_size", step_size)
        self.step_size = step_size
        self.gamma = _check_positive("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = self._current_lrs()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``base_lr * gamma ** epoch``."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _check_positive("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = self._current_lrs()
        if self.last_epoch == 0:
            return lrs
        return [lr * self.gamma for lr in lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine from ``base_lr`` down to ``eta_min`` over ``T_max`` epochs (no restarts).

    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``; past
    ``T_max`` the cosine carries on and the lr climbs back, as in PyTorch. ``T_max``
    may be any number > 0 (PyTorch takes 10.0 or 2.5 too); the cosine's half period.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = _check_positive("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = check_number("CosineAnnealingLR", "eta_min", eta_min)
        if not self.eta_min >= 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be >= 0, got {eta_min!r}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = self._current_lrs()
        epoch, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if epoch == 0:
            return lrs
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            # Leaving the trough: the ratio below would divide by 1 + cos(pi) = 0.
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for lr, base_lr in zip(lrs, self.base_lrs)]
        ratio = ((1 + math.cos(math.pi * epoch / t_max))
                 / (1 + math.cos(math.pi * (epoch - 1) / t_max)))
        return [ratio * (lr - eta_min) + eta_min for lr in lrs]


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the lr's factor from ``start_factor`` to ``end_factor``.

    ``base_lr * (start_factor + (end_factor - start_factor) * min(epoch, total_iters)
    / total_iters)``: constant after ``total_iters`` epochs. PyTorch's ``LinearLR``.
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self.start_factor = check_number("LinearLR", "start_factor", start_factor)
        if not 0 < self.start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        self.end_factor = check_number("LinearLR", "end_factor", end_factor)
        if not 0 <= self.end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        _check_positive_int("LinearLR", "total_iters", total_iters)
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        lrs = self._current_lrs()
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in lrs]
        if self.last_epoch > self.total_iters:
            return lrs
        # The ratio of this epoch's factor to the previous one's.
        change = self.end_factor - self.start_factor
        ratio = 1.0 + change / (self.total_iters * self.start_factor
                                + (self.last_epoch - 1) * change)
        return [lr * ratio for lr in lrs]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving for ``patience`` epochs.

    ``step(metric)`` once per epoch. An improvement means beating the best value so
    far by ``threshold`` (relative, ``best * (1 -+ threshold)``, or absolute,
    ``best -+ threshold``, per ``threshold_mode``; ``mode="max"`` for metrics that
    should grow). After a reduction, ``cooldown`` epochs pass before bad epochs count
    again. Lrs never go below ``min_lr`` (a number, or one per group), and a
    reduction smaller than ``eps`` is skipped. PyTorch's ``ReduceLROnPlateau``: a
    number ``min_lr`` (kept as ``default_min_lr``) also floors groups added to the
    optimizer later; a list must then be extended by hand (``min_lrs``).
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        _check_optimizer(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError("ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', "
                             f"got {threshold_mode!r}")
        factor = check_number("ReduceLROnPlateau", "factor", factor)
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if not (isinstance(value, numbers.Integral) and value >= 0):
                raise ValueError(f"ReduceLROnPlateau: {name} must be an integer >= 0, "
                                 f"got {value!r}")
        threshold = check_number("ReduceLROnPlateau", "threshold", threshold)
        eps = check_number("ReduceLROnPlateau", "eps", eps)
        for name, value in (("threshold", threshold), ("eps", eps)):
            if not value >= 0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be >= 0, got {value!r}")
        n_groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n_groups:
                raise ValueError(f"ReduceLROnPlateau: min_lr has {len(min_lr)} values for "
                                 f"{n_groups} parameter group(s)")
            min_lrs = [check_number("ReduceLROnPlateau", "min_lr", value) for value in min_lr]
            default_min_lr = None
        else:
            default_min_lr = check_number("ReduceLROnPlateau", "min_lr", min_lr)
            min_lrs = [default_min_lr] * n_groups
        if not all(value >= 0 for value in min_lrs):
            raise ValueError(f"ReduceLROnPlateau: min_lr must be >= 0, got {min_lr!r}")

        self.optimizer = optimizer
        self.mode = mode
        self.factor = factor
        self.patience = patience
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.cooldown = cooldown
        self.min_lrs = min_lrs
        self.default_min_lr = default_min_lr
        self.eps = eps
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self._last_lr = self._current_lrs()

    def step(self, metric):
        """Record this epoch's ``metric`` (a number or a one-element tensor/array)."""
        current = float(metric.item() if hasattr(metric, "item") else metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _is_better(self, value):
        best, threshold = self.best, self.threshold
        if self.mode == "min":
            return value < (best * (1 - threshold) if self.threshold_mode == "rel"
                            else best - threshold)
        return value > (best * (1 + threshold) if self.threshold_mode == "rel"
                        else best + threshold)

    def load_state_dict(self, state_dict):
        """Restore a :meth:`state_dict`, also one saved before ``default_min_lr`` was kept.

        Such a state dict's ``min_lrs`` came from a number when they are all equal;
        its ``default_min_lr`` is taken to be that number (else None, a list).
        """
        if "default_min_lr" not in state_dict and "min_lrs" in state_dict:
            min_lrs = list(host_value(state_dict["min_lrs"]))
            same = bool(min_lrs) and all(value == min_lrs[0] for value in min_lrs)
            state_dict = dict(state_dict, default_min_lr=min_lrs[0] if same else None)
        super().load_state_dict(state_dict)

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ValueError(
                    f"ReduceLROnPlateau: the optimizer now has {len(groups)} parameter "
                    f"group(s) but min_lr was given per group for {len(self.min_lrs)}; set "
                    "scheduler.min_lrs to one value per group after adding a group")
            # PyTorch's rule: a single min_lr floors every group, old and new.
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr


# --------------------------------------------------------------------- helpers
def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"a scheduler needs a minigrad optimizer, got "
                        f"{type(optimizer).__name__}")


def _check_positive_int(scheduler, name, value):
    if not (isinstance(value, numbers.Integral) and value >= 1):
        raise ValueError(f"{scheduler}: {name} must be an integer >= 1, got {value!r}")


def _check_positive(scheduler, name, value):
    """``value`` as :func:`check_number` gives it, if it is > 0; else an error."""
    value = check_number(scheduler, name, value)
    if not value > 0:
        raise ValueError(f"{scheduler}: {name} must be > 0, got {value!r}")
    return value
