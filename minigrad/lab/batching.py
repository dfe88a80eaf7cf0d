"""Batch, mini-batch and stochastic gradient descent: one optimizer, three batch sizes.

The same linear model (``Dense(1, 1)``: a slope and an intercept, so its path can be
drawn in the plane) is trained on the same data with plain SGD fed by a
``DataLoader`` whose ``batch_size`` is the whole data set, 32, or 1.
"""
import time
from dataclasses import dataclass

import numpy as np

from .. import losses, nn, optim
from ..data import DataLoader, TensorDataset
from ..tensor import Tensor, no_grad
from ..train.step import EagerStep
from .toy_data import make_line_data

__all__ = ["BatchRun", "compare_batch_sizes", "loss_surface"]


@dataclass
class BatchRun:
    """One training run at one batch size.

    ``epoch_losses``: full-data loss before training and after each epoch;
    ``epoch_times``: training seconds (evaluation excluded) at those moments;
    ``step_losses``: the loss of each mini-batch as it was trained on;
    ``path``: (weight, bias) before training and after every step.
    """

    label: str
    batch_size: int
    steps_per_epoch: int
    epoch_losses: np.ndarray
    epoch_times: np.ndarray
    step_losses: np.ndarray
    path: np.ndarray

    @property
    def steps(self):
        """Optimizer steps taken in all."""
        return len(self.path) - 1

    @property
    def tortuosity(self):
        """Length of the parameter path divided by the distance it covered (1 = straight).

        A noisy path zig-zags: it travels much further than it gets.
        """
        hops = np.linalg.norm(np.diff(self.path, axis=0), axis=1).sum()
        net = np.linalg.norm(self.path[-1] - self.path[0])
        return float(hops / net) if net > 0 else float("inf")

    @property
    def seconds_per_epoch(self):
        """Mean training time of one epoch."""
        return float(self.epoch_times[-1] / max(len(self.epoch_times) - 1, 1))


def _params_point(model):
    return np.array([float(model.weight.data.reshape(-1)[0]), float(model.bias.data[0])])


def _full_loss(model, loss_fn, x, y):
    with no_grad():
        return float(loss_fn(model(x), y).data)


def compare_batch_sizes(data=None, batch_sizes=None, epochs=10, lr=0.05, loss="mse",
                        start=(-1.0, 3.0), seed=0):
    """Train ``Dense(1, 1)`` with plain SGD at each batch size; one BatchRun per size.

    ``data`` is a :class:`~minigrad.lab.toy_data.LineData` (default: 256 noisy
    points on a line). ``batch_sizes`` maps a label to a size, default
    ``{"batch": N, "mini-batch": 32, "stochastic": 1}``. Every run starts from the
    same (weight, bias) = ``start``, uses the same lr and sees the data in the same
    seeded order.
    """
    data = make_line_data(n=256, seed=seed) if data is None else data
    n = len(data)
    if batch_sizes is None:
        batch_sizes = {"batch": n, "mini-batch": 32, "stochastic": 1}
    loss_fn = losses.get(loss)
    x_all, y_all = Tensor(data.x), Tensor(data.y)
    # One untimed step first, so the first run's clock does not include one-off costs
    # (lazy imports, first calls into the kernels) that the later runs would not pay.
    warm_up = nn.Dense(1, 1)
    loss_fn(warm_up(x_all[:1]), y_all[:1]).backward()
    optim.SGD(warm_up.parameters(), lr=0.0).step()
    runs = {}
    for label, batch_size in batch_sizes.items():
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch size {batch_size} for {label!r} must be in [1, {n}]")
        model = nn.Dense(1, 1)
        model.weight.data[...] = start[0]
        model.bias.data[...] = start[1]
        step = EagerStep(model, loss_fn, optim.SGD(model.parameters(), lr=lr))
        # Tiny in-memory batches: a prefetch thread would only add hand-off time.
        loader = DataLoader(TensorDataset(data.x, data.y), batch_size=batch_size,
                            shuffle=True, seed=seed, prefetch=0)
        epoch_losses = [_full_loss(model, loss_fn, x_all, y_all)]
        epoch_times, step_losses, path = [0.0], [], [_params_point(model)]
        elapsed = 0.0
        for _ in range(epochs):
            started = time.perf_counter()
            for xb, yb in loader:
                step_losses.append(float(step(xb, yb).data))
                path.append(_params_point(model))
            elapsed += time.perf_counter() - started
            epoch_times.append(elapsed)
            epoch_losses.append(_full_loss(model, loss_fn, x_all, y_all))
        runs[label] = BatchRun(label=label, batch_size=batch_size, steps_per_epoch=len(loader),
                               epoch_losses=np.array(epoch_losses),
                               epoch_times=np.array(epoch_times),
                               step_losses=np.array(step_losses), path=np.array(path))
    return runs


def loss_surface(data, weights, biases, loss="mse"):
    """The full-data loss of ``Dense(1, 1)`` at every (weight, bias) of a grid.

    ``weights`` and ``biases`` are 1-D; returns (len(biases), len(weights)),
    computed with the library's own loss, per point.
    """
    loss_fn = losses.get(loss, reduction="none")
    W, B = np.meshgrid(np.asarray(weights, np.float64), np.asarray(biases, np.float64))
    x = np.asarray(data.x, np.float64).reshape(1, 1, -1)
    y = np.asarray(data.y, np.float64).reshape(1, 1, -1)
    with no_grad():
        prediction = Tensor(W[..., None] * x + B[..., None])
        target = Tensor(np.broadcast_to(y, prediction.shape).copy())
        per_point = loss_fn(prediction, target)
        return per_point.mean(axis=-1).numpy()
