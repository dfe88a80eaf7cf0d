"""Optimizers on 2-D landscapes: test functions, trajectories, lr regimes, lr schedules.

Each test function is one formula written with Tensor operators, so the same
expression gives the loss that minigrad's autograd differentiates for an optimizer
and the values on a grid for a contour plot. :func:`run_optimizer` moves a
2-element :class:`~minigrad.nn.Parameter` with minigrad's own optimizer classes
(the ones used for training) and records the path.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from .. import optim
from ..nn import Parameter
from ..optim import lr_scheduler
from ..tensor import Tensor, no_grad

__all__ = ["TestFunction", "ILL_CONDITIONED_BOWL", "ROSENBROCK", "SADDLE", "HIMMELBLAU",
           "FUNCTIONS", "get_function", "OPTIMIZER_SPECS", "Trajectory", "run_optimizer",
           "compare_optimizers", "LR_REGIMES", "learning_rate_regimes", "SCHEDULES",
           "compare_schedules"]


@dataclass(frozen=True)
class TestFunction:
    """A 2-D loss landscape ``f(x, y)`` with its known minima and a view for plots.

    ``expression(x, y)`` uses only Tensor operators (``+ - * **``), so it takes
    scalar Tensors (for autograd) or grid Tensors (for contours) alike.
    ``lrs`` holds a learning rate per optimizer that works on this landscape: the
    scale of the gradient differs by orders of magnitude between landscapes, and
    an lr is only "good" relative to it.
    """

    name: str
    title: str
    expression: object
    minima: tuple
    start: tuple
    xlim: tuple
    ylim: tuple
    lrs: dict = field(default_factory=dict)
    log_levels: bool = True
    description: str = ""

    __test__ = False  # a library class whose name starts with "Test": not for pytest

    def __call__(self, x, y):
        """f(x, y) for Tensors (recorded for autograd) or plain numbers."""
        return self.expression(x, y)

    def value(self, point):
        """f at a point ``(x, y)`` as a float."""
        p = np.asarray(point, dtype=np.float64)
        with no_grad():
            return float(self.expression(Tensor(p[0]), Tensor(p[1])).data)

    def grid(self, resolution=200, xlim=None, ylim=None):
        """``(X, Y, Z)`` over the plotting window, Z computed by the same expression."""
        xs = np.linspace(*(xlim or self.xlim), resolution)
        ys = np.linspace(*(ylim or self.ylim), resolution)
        X, Y = np.meshgrid(xs, ys)
        with no_grad():
            Z = self.expression(Tensor(X), Tensor(Y)).data
        return X, Y, np.asarray(Z)

    def distance_to_minimum(self, points):
        """Euclidean distance from each point (shape (..., 2)) to the nearest minimum."""
        points = np.asarray(points, dtype=np.float64)
        minima = np.asarray(self.minima, dtype=np.float64)
        d = np.linalg.norm(points[..., None, :] - minima, axis=-1)
        return d.min(axis=-1)

    @property
    def min_value(self):
        """The lowest value over the known minima."""
        return min(self.value(m) for m in self.minima)


def _bowl(x, y):
    # Curvatures 0.1 and 4 (condition number 40): steep across, nearly flat along.
    return 0.05 * x ** 2 + 2.0 * y ** 2


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def _saddle(x, y):
    # A saddle point at the origin between two minima at (0, +-1); bounded below,
    # so an optimizer that escapes the saddle has somewhere to go.
    return x ** 2 + 0.25 * y ** 4 - 0.5 * y ** 2


def _himmelblau(x, y):
    return (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2


ILL_CONDITIONED_BOWL = TestFunction(
    name="bowl", title="Ill-conditioned bowl  0.05x² + 2y²", expression=_bowl,
    minima=((0.0, 0.0),), start=(-9.0, 2.0), xlim=(-10, 10), ylim=(-3, 3),
    lrs={"sgd": 0.45, "momentum": 0.05, "nesterov": 0.05, "rmsprop": 0.1,
         "adagrad": 1.0, "adam": 0.3},
    description="curvature 40x larger across the valley than along it")

ROSENBROCK = TestFunction(
    name="rosenbrock", title="Rosenbrock  (1-x)² + 100(y-x²)²", expression=_rosenbrock,
    minima=((1.0, 1.0),), start=(-1.5, 2.0), xlim=(-2, 2), ylim=(-1, 3),
    lrs={"sgd": 1.5e-3, "momentum": 2e-4, "nesterov": 2e-4, "rmsprop": 3e-3,
         "adagrad": 1.0, "adam": 0.1},
    description="a curved, flat-bottomed valley; the minimum (1, 1) lies at its far end")

# The start sits 1e-6 off the saddle's ridge: the gradient across it is about 1e-6,
# which plain SGD must amplify step by step, while adaptive methods rescale it.
SADDLE = TestFunction(
    name="saddle", title="Saddle  x² + y⁴/4 - y²/2", expression=_saddle,
    minima=((0.0, 1.0), (0.0, -1.0)), start=(-1.5, 1e-6), xlim=(-2, 2), ylim=(-1.6, 1.6),
    lrs={"sgd": 0.1, "momentum": 0.02, "nesterov": 0.02, "rmsprop": 0.02,
         "adagrad": 0.3, "adam": 0.05},
    log_levels=False,
    description="a saddle point at the origin between two minima at (0, +-1)")

HIMMELBLAU = TestFunction(
    name="himmelblau", title="Himmelblau  (x²+y-11)² + (x+y²-7)²", expression=_himmelblau,
    minima=((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
    start=(-0.3, -0.9), xlim=(-5, 5), ylim=(-5, 5),
    lrs={"sgd": 0.005, "momentum": 0.001, "nesterov": 0.001, "rmsprop": 0.02,
         "adagrad": 0.5, "adam": 0.1},
    description="four minima; which one an optimizer reaches depends on its path")

FUNCTIONS = {f.name: f for f in (ILL_CONDITIONED_BOWL, ROSENBROCK, SADDLE, HIMMELBLAU)}


def get_function(name):
    """A test function by name (or a TestFunction, returned as is)."""
    if isinstance(name, TestFunction):
        return name
    if name not in FUNCTIONS:
        raise ValueError(f"unknown test function {name!r}; known: {', '.join(FUNCTIONS)}")
    return FUNCTIONS[name]


#: Lab names -> (optimizer registry name, fixed keyword arguments).
OPTIMIZER_SPECS = {
    "sgd": ("sgd", {}),
    "momentum": ("sgd", {"momentum": 0.9}),
    "nesterov": ("sgd", {"momentum": 0.9, "nesterov": True}),
    "rmsprop": ("rmsprop", {}),
    "adagrad": ("adagrad", {}),
    "adam": ("adam", {}),
    "adamw": ("adamw", {}),
}


def _build_optimizer(name, params, lr, opt_kwargs):
    if name in OPTIMIZER_SPECS:
        registry_name, fixed = OPTIMIZER_SPECS[name]
    elif isinstance(name, str) and name.lower() in optim.OPTIMIZERS:
        registry_name, fixed = name.lower(), {}
    else:
        raise ValueError(f"unknown optimizer {name!r}; known: "
                         f"{', '.join(sorted(set(OPTIMIZER_SPECS) | set(optim.OPTIMIZERS)))}")
    return optim.get(registry_name, params, lr=lr, **{**fixed, **opt_kwargs})


@dataclass
class Trajectory:
    """The path of one optimizer run.

    ``path`` is (steps_taken + 1, 2), the start first; ``losses`` the loss at each
    point of the path; ``lrs`` the learning rate used at each step; ``diverged``
    whether the run was stopped for a non-finite or exploding loss, at step
    ``diverged_at``.
    """

    optimizer: str
    function: TestFunction
    lr: float
    path: np.ndarray
    losses: np.ndarray
    lrs: np.ndarray
    diverged: bool
    diverged_at: int | None = None

    @property
    def final_point(self):
        """The last point of the path."""
        return self.path[-1]

    @property
    def final_loss(self):
        """The loss at the last point."""
        return float(self.losses[-1])

    @property
    def final_distance(self):
        """Distance from the last point to the nearest known minimum (inf if diverged)."""
        if self.diverged:
            return math.inf
        return float(self.function.distance_to_minimum(self.path[-1]))

    def settled_distance(self, tail=0.1):
        """Mean distance to the nearest minimum over the last ``tail`` fraction of the path.

        A single last point can land near the minimum by chance while the run still
        bounces around it; the mean over the tail measures how closely it settled.
        """
        if self.diverged:
            return math.inf
        count = max(1, int(round(tail * (len(self.path) - 1))))
        return float(self.function.distance_to_minimum(self.path[-count:]).mean())

    def steps_to_reach(self, tolerance):
        """The first step whose point lies within ``tolerance`` of a minimum, or None."""
        close = np.nonzero(self.function.distance_to_minimum(self.path) <= tolerance)[0]
        return int(close[0]) if close.size else None


def run_optimizer(name, function, start=None, lr=None, steps=200, *, scheduler=None,
                  gradient_noise=0.0, seed=0, explode_factor=1e6, **opt_kwargs):
    """Minimise a 2-D test function with one of minigrad's optimizers; returns a Trajectory.

    ``name`` is an optimizer registry name (``"sgd"``, ``"adam"``, ...) or a lab
    alias from :data:`OPTIMIZER_SPECS` (``"momentum"``, ``"nesterov"``);
    ``opt_kwargs`` go to its constructor. ``start`` and ``lr`` default to the
    function's own. ``scheduler(optimizer)`` may build an lr scheduler from
    ``minigrad.optim.lr_scheduler``, stepped after every step (``ReduceLROnPlateau``
    with that step's loss).
    ``gradient_noise`` adds seeded Gaussian noise of that standard deviation to
    each gradient, the way mini-batch sampling makes gradients noisy.

    The run stops as diverged when the loss or the point is no longer finite, or
    the loss grows beyond ``explode_factor`` times its starting size.
    """
    function = get_function(function)
    start = function.start if start is None else start
    if lr is None:
        if name not in function.lrs:
            raise ValueError(f"no default lr for {name!r} on {function.name!r}; pass lr=")
        lr = function.lrs[name]
    start = np.asarray(start, dtype=np.float64)
    if start.shape != (2,):
        raise ValueError(f"start must be a point (x, y), got shape {start.shape}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if gradient_noise < 0:
        raise ValueError(f"gradient_noise must be >= 0, got {gradient_noise}")

    point = Parameter(start.copy())
    optimizer = _build_optimizer(name, [point], lr, opt_kwargs)
    schedule = scheduler(optimizer) if scheduler is not None else None
    rng = np.random.default_rng(seed)

    path, losses, lrs = [start.copy()], [], []
    limit = None
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported instead
        for step in range(int(steps) + 1):
            loss = function(point[0], point[1])
            value = float(loss.data)
            losses.append(value)
            if limit is None:
                limit = explode_factor * max(abs(value), 1.0)
            if not (math.isfinite(value) and abs(value) <= limit
                    and np.all(np.isfinite(point.data))):
                diverged_at = step
                break
            if step == steps:
                break
            optimizer.zero_grad()
            loss.backward()
            if gradient_noise:
                point.grad = point.grad + gradient_noise * rng.standard_normal(2)
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if isinstance(schedule, lr_scheduler.ReduceLROnPlateau):
                schedule.step(value)  # watches the loss, as fit steps it with val_loss
            elif schedule is not None:
                schedule.step()
            path.append(point.data.copy())
    return Trajectory(optimizer=name, function=function, lr=float(lr),
                      path=np.array(path), losses=np.array(losses), lrs=np.array(lrs),
                      diverged=diverged_at is not None, diverged_at=diverged_at)


def compare_optimizers(function, optimizers=("sgd", "momentum", "nesterov", "rmsprop",
                                             "adagrad", "adam"), steps=300, lrs=None, start=None):
    """One Trajectory per optimizer on ``function``, each at its lr for that landscape."""
    function = get_function(function)
    lrs = {**function.lrs, **(lrs or {})}
    return {name: run_optimizer(name, function, start=start, lr=lrs.get(name), steps=steps)
            for name in optimizers}


#: Plain SGD on the bowl, whose largest curvature is 4: gradient descent diverges for
#: lr > 2/4 = 0.5; below that, the larger the lr the faster it goes along the valley.
LR_REGIMES = {"too large": 0.6, "too small": 0.002, "about right": 0.4}


def learning_rate_regimes(function=ILL_CONDITIONED_BOWL, optimizer="sgd", lrs=None, steps=100,
                          start=None):
    """Trajectories of one optimizer at an oversized, a tiny and a good lr (``LR_REGIMES``)."""
    lrs = LR_REGIMES if lrs is None else lrs
    return {label: run_optimizer(optimizer, function, start=start, lr=lr, steps=steps)
            for label, lr in lrs.items()}


#: Learning-rate schedules for :func:`compare_schedules`: name -> factory(optimizer, steps).
SCHEDULES = {
    "constant": lambda opt, steps: None,
    "step decay": lambda opt, steps: lr_scheduler.StepLR(opt, step_size=max(1, steps // 4),
                                                         gamma=0.3),
    "exponential": lambda opt, steps: lr_scheduler.ExponentialLR(opt, gamma=0.01 ** (1 / steps)),
    "cosine": lambda opt, steps: lr_scheduler.CosineAnnealingLR(opt, T_max=steps),
}


def compare_schedules(function=HIMMELBLAU, optimizer="sgd", lr=0.01, steps=200,
                      gradient_noise=10.0, schedules=None, seed=0, start=(0.0, 0.0)):
    """The same noisy descent under each lr schedule; one Trajectory per schedule.

    With exact gradients a constant lr settles into a minimum anyway; with noisy
    (mini-batch-like) gradients it keeps bouncing around it at a distance set by
    lr x noise, and a decaying lr lets it settle. Every run draws the same noise
    (same ``seed``), so the schedule is the only difference. The default landscape
    is well conditioned near its minima: on a nearly flat valley a decayed lr would
    freeze the point wherever the noise left it, before it could settle.
    """
    schedules = SCHEDULES if schedules is None else schedules
    return {label: run_optimizer(optimizer, function, start=start, lr=lr, steps=steps,
                                 scheduler=lambda opt, f=factory: f(opt, steps),
                                 gradient_noise=gradient_noise, seed=seed)
            for label, factory in schedules.items()}
