"""Loss functions side by side: their curves and slopes, and what they do to a fit.

Every value and every gradient here comes from minigrad's own losses
(``minigrad.losses``) and autograd, the code that trains models.
"""
from dataclasses import dataclass

import numpy as np

from .. import losses, nn, optim
from ..optim import lr_scheduler
from ..tensor import Tensor
from ..train.step import EagerStep
from .toy_data import make_line_data, make_two_blobs

__all__ = ["LossCurve", "regression_loss_curves", "classification_loss_curves",
           "LineFit", "fit_lines", "BoundaryFit", "fit_classifiers"]


@dataclass
class LossCurve:
    """A loss against the error (regression) or the margin (classification).

    ``values[i]`` is the loss at ``x[i]`` and ``gradients[i]`` its derivative with
    respect to ``x[i]``, both computed by minigrad.
    """

    name: str
    x: np.ndarray
    values: np.ndarray
    gradients: np.ndarray


def _values_and_gradients(make_inputs, loss_of, xs):
    """Evaluate a per-sample loss at every x and differentiate it with autograd.

    ``make_inputs(x_leaf)`` turns the leaf Tensor of x values into the loss's
    inputs; the loss is per sample (reduction "none"), so the gradient of its sum
    is each sample's own derivative.
    """
    leaf = Tensor(np.asarray(xs, dtype=np.float64).copy(), requires_grad=True)
    per_sample = loss_of(*make_inputs(leaf))
    per_sample.sum().backward()
    return per_sample.numpy().reshape(-1), leaf.grad.copy()


def regression_loss_curves(errors=None, delta=1.0):
    """MSE, MAE and Huber as functions of the error ``prediction - target``."""
    errors = np.linspace(-3, 3, 601) if errors is None else np.asarray(errors, np.float64)
    targets = Tensor(np.zeros_like(errors))
    curves = {}
    for name, loss in (("MSE", losses.get("mse", reduction="none")),
                       ("MAE", losses.get("mae", reduction="none")),
                       (f"Huber (δ={delta:g})", losses.get("huber", reduction="none",
                                                            delta=delta))):
        values, grads = _values_and_gradients(lambda e: (e, targets), loss, errors)
        curves[name] = LossCurve(name, errors, values, grads)
    return curves


def classification_loss_curves(margins=None):
    """Hinge, logistic and two-class cross-entropy as functions of the margin.

    The margin is ``y * score`` for a label ``y`` in {-1, +1}: positive when the
    point is on the right side of the boundary. Each loss is minigrad's own:

    - hinge: ``losses.get("hinge")`` (PyTorch's MultiMarginLoss) on two logits
      ``(margin, 0)`` with the true class 0; that loss divides by the number of
      classes, so it is multiplied by 2 here to give the SVM hinge ``max(0, 1 - m)``;
    - logistic: ``losses.get("logistic")`` (BCEWithLogitsLoss) on the score
      ``margin`` with target 1: ``log(1 + exp(-m))``;
    - cross-entropy: ``losses.get("cross_entropy")`` on the logits ``(margin, 0)``
      with true class 0; for two classes it is the logistic loss exactly.
    """
    margins = np.linspace(-3, 3, 601) if margins is None else np.asarray(margins, np.float64)
    n = margins.size
    labels = Tensor(np.zeros(n, dtype=np.int64))
    first_column = Tensor(np.array([[1.0, 0.0]]))

    def two_logits(m):
        # Logits (m, 0): the true class 0 leads the other by m.
        return (m.reshape(n, 1) * first_column,)

    hinge = losses.get("hinge", reduction="none")
    logistic = losses.get("logistic", reduction="none")
    cross_entropy = losses.get("cross_entropy", reduction="none")
    curves = {}
    values, grads = _values_and_gradients(two_logits, lambda z: 2 * hinge(z, labels), margins)
    curves["hinge"] = LossCurve("hinge", margins, values, grads)
    values, grads = _values_and_gradients(lambda m: (m.reshape(n, 1), Tensor(np.ones((n, 1)))),
                                          logistic, margins)
    curves["logistic"] = LossCurve("logistic", margins, values, grads)
    values, grads = _values_and_gradients(two_logits, lambda z: cross_entropy(z, labels),
                                          margins)
    curves["cross-entropy"] = LossCurve("cross-entropy", margins, values, grads)
    return curves


@dataclass
class LineFit:
    """A straight line fitted under one loss, and how far it lies from the true line."""

    loss: str
    slope: float
    intercept: float
    losses: np.ndarray
    line_error: float

    def __call__(self, x):
        """The fitted line at ``x``."""
        return self.slope * np.asarray(x) + self.intercept


def _zeroed_dense(in_features, out_features):
    """A ``Dense`` layer starting from all-zero weights and bias: every loss's fit
    begins at the same point."""
    model = nn.Dense(in_features, out_features)
    model.weight.data[...] = 0.0
    model.bias.data[...] = 0.0
    return model


def _train_steps(model, loss_fn, x, target, optimizer, steps, schedule=None):
    """Full-batch training for ``steps`` steps; returns each step's loss (before its update)."""
    step, history = EagerStep(model, loss_fn, optimizer), []
    for _ in range(steps):
        loss = step(x, target)
        if schedule is not None:
            schedule.step()
        history.append(float(loss.data))
    return np.array(history)


def _line_error(data, slope, intercept):
    """Root-mean-square gap between a line and the true line over the data's x range."""
    xs = np.linspace(float(data.x.min()), float(data.x.max()), 101)
    return float(np.sqrt(np.mean((slope * xs + intercept - data.true_line(xs)) ** 2)))


def fit_lines(data=None, loss_names=("mse", "huber", "mae"), steps=500, lr=0.1, seed=0):
    """Fit ``Dense(1, 1)`` to the same data under each loss; one LineFit per loss.

    ``data`` defaults to 60 points on the line ``y = 2x - 1`` with 15% of them
    lifted far above it. Each fit is full-batch Adam with a cosine-decaying lr
    (so that MAE, whose gradient never shrinks, still settles) from the same start.
    ``line_error`` measures the fitted line against the true one, not against the
    corrupted points.
    """
    data = make_line_data(n=60, outlier_fraction=0.15, seed=seed) if data is None else data
    x, y = Tensor(data.x), Tensor(data.y)
    fits = {}
    for name in loss_names:
        model = _zeroed_dense(1, 1)
        optimizer = optim.Adam(model.parameters(), lr=lr)
        schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        history = _train_steps(model, losses.get(name), x, y, optimizer, steps, schedule)
        slope, intercept = float(model.weight.data[0, 0]), float(model.bias.data[0])
        fits[name] = LineFit(name, slope, intercept, history,
                             _line_error(data, slope, intercept))
    return fits


@dataclass
class BoundaryFit:
    """A linear classifier trained under one loss.

    The boundary is ``normal . x + offset = 0``, class 1 on the positive side.
    ``pushing`` marks the points whose loss still has a non-zero gradient at the
    end of training: the points that keep moving the boundary.
    """

    loss: str
    normal: np.ndarray
    offset: float
    accuracy: float
    pushing: np.ndarray
    losses: np.ndarray

    @property
    def pushing_count(self):
        """How many points still move the boundary."""
        return int(self.pushing.sum())


def _per_sample_gradient_norms(loss_fn, logits, target):
    """|d loss / d logits| for each sample (the logits made a leaf of their own)."""
    leaf = Tensor(logits.data.copy(), requires_grad=True)
    loss_fn(leaf, target).sum().backward()
    return np.abs(leaf.grad).sum(axis=1)


def fit_classifiers(points=None, labels=None, loss_names=("hinge", "logistic"), steps=300,
                    lr=0.05, seed=0):
    """Train a linear classifier on 2-D points under each loss; one BoundaryFit per loss.

    Default data: two overlapping clouds plus a few points far out on class 1's side.
    ``"hinge"`` trains two logits with minigrad's MultiMarginLoss; ``"logistic"``
    one score with BCEWithLogitsLoss (``"cross_entropy"`` works too, with two
    logits). Hinge loss stops caring about a point once it is beyond the margin;
    logistic loss keeps a small pull from every point.
    """
    if points is None:
        points, labels = make_two_blobs(n=200, far_points=10, seed=seed)
    points = np.asarray(points, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    x = Tensor(points)
    fits = {}
    for name in loss_names:
        one_score = name in ("logistic", "bce")
        target = Tensor(labels.astype(np.float32).reshape(-1, 1)) if one_score \
            else Tensor(labels)
        model = _zeroed_dense(2, 1 if one_score else 2)
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        history = _train_steps(model, losses.get(name), x, target, optimizer, steps)
        w, b = model.weight.data.astype(np.float64), model.bias.data.astype(np.float64)
        if one_score:
            normal, offset = w[0], float(b[0])
        else:  # class 1 wins where logit 1 - logit 0 > 0
            normal, offset = w[1] - w[0], float(b[1] - b[0])
        predicted = (points @ normal + offset > 0).astype(np.int64)
        pushing = _per_sample_gradient_norms(losses.get(name, reduction="none"), model(x),
                                             target) > 1e-6
        fits[name] = BoundaryFit(name, normal, offset, float((predicted == labels).mean()),
                                 pushing.reshape(-1), history)
    return fits
