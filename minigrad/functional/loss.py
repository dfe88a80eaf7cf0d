"""Losses' functional forms (the classes in ``minigrad.losses`` call these):
``cross_entropy``, ``nll_loss``, ``mse_loss``, ``l1_loss``, ``huber_loss``,
``binary_cross_entropy_with_logits``, ``multi_margin_loss``."""
import builtins
import math

import numpy as np

from .. import backend
from ..tensor import Tensor, constant_like
from ._core import _record, _xp
from .activation import log_softmax, relu
from .elementwise import abs
from .reduce import mean, sum
from .shape import reshape


def _reduce(losses, reduction):
    if reduction == "mean":
        return mean(losses)
    if reduction == "sum":
        return sum(losses)
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_labels(target, logits, loss):
    """Integer class labels as an array, checked against the logits' class count.

    On the CPU a label outside [0, classes) is a ValueError naming it. On a GPU it is
    not checked on the host, since reading the check back would wait for the GPU on
    every training step (and a CUDA graph capture cannot wait at all): the loss comes
    out NaN instead, on the device (the CUDA softmax cross-entropy kernel does it
    itself, :func:`_nan_for_bad_labels` for the others; CuPy's indexing would wrap the
    label round to another class), and a NaN loss stops ``fit`` at its next check.
    While ``backend.capturing()`` the CPU check is skipped too.
    """
    labels = target.data if isinstance(target, Tensor) else target
    xp = _xp(logits)
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{loss}: class labels must be integers, got dtype {labels.dtype}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"{loss}: {logits.shape[0]} rows of logits (shape {logits.shape}) "
                         f"but labels of shape {labels.shape}")
    n_classes = logits.shape[1]
    if logits.device == "cpu" and not backend.is_capturing():
        bad = (labels < 0) | (labels >= n_classes)
        if bad.any():
            label = int(labels[bad][0])
            raise ValueError(f"{loss}: label {label} is outside [0, {n_classes}) for "
                             f"logits with {n_classes} classes")
    return labels.astype(np.int64, copy=False)


def _nan_for_bad_labels(losses, labels, n_classes):
    """Per-sample ``losses`` (a Tensor) with NaN where a label lies outside
    [0, n_classes): how a GPU reports a bad label without a host check (see
    :func:`_class_labels`). The gradient passes through unchanged; the NaN loss is
    what stops training."""
    xp = _xp(losses)
    bad = (labels < 0) | (labels >= n_classes)
    # A Python float keeps the losses' own float dtype (NumPy's and CuPy's rule).
    poisoned = xp.where(bad, math.nan, losses.data)

    def nan_for_bad_labels_backward(g):
        return (g,)
    return _record(poisoned, (losses,), nan_for_bad_labels_backward)


def _checked_on_device(losses, labels, n_classes):
    """``losses`` from labels that :func:`_class_labels` left unchecked on a GPU, with
    NaN for the bad ones; on the CPU (checked already) ``losses`` itself."""
    if losses.device == "cpu":
        return losses
    return _nan_for_bad_labels(losses, labels, n_classes)


def _check_logits(logits, loss):
    if logits.ndim != 2:
        raise ValueError(f"{loss}: expected logits of shape (N, classes), got {logits.shape}")


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy on raw logits (torch.nn.CrossEntropyLoss).

    ``target`` holds integer class labels (N,), or class probabilities (N, C). A label
    outside [0, C) is a ValueError on the CPU and a NaN loss on a GPU, where checking
    it would wait for the device (see ``_class_labels``).
    """
    _check_logits(logits, "cross_entropy")
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != logits.shape:
            raise ValueError(f"cross_entropy: probability targets of shape {target.shape} "
                             f"do not match logits {logits.shape}")
        return _reduce(-sum(target * log_softmax(logits, axis=1), axis=1), reduction)
    labels = _class_labels(target, logits, "cross_entropy")
    forward, backward = backend.kernels(logits.device, "softmax_cross_entropy_forward",
                                        "softmax_cross_entropy_backward")
    losses, cache = forward(logits.data, labels)

    def cross_entropy_backward(g):
        return (backward(g, cache),)
    return _reduce(_record(losses, (logits,), cross_entropy_backward), reduction)


def nll_loss(log_probs, target, reduction="mean"):
    """Negative log-likelihood of integer labels under log-probabilities (N, C).

    A label outside [0, C): a ValueError on the CPU, a NaN loss on a GPU.
    """
    _check_logits(log_probs, "nll_loss")
    labels = _class_labels(target, log_probs, "nll_loss")
    losses = -log_probs[_xp(log_probs).arange(labels.shape[0]), labels]
    return _reduce(_checked_on_device(losses, labels, log_probs.shape[1]), reduction)


def _regression_pair(prediction, target, loss):
    target = constant_like(target, prediction)
    if prediction.shape != target.shape:
        raise ValueError(f"{loss}: prediction shape {prediction.shape} does not match "
                         f"target shape {target.shape}")
    return prediction, target


def mse_loss(prediction, target, reduction="mean"):
    """Mean squared error (torch.nn.MSELoss)."""
    prediction, target = _regression_pair(prediction, target, "mse_loss")
    return _reduce((prediction - target) ** 2, reduction)


def l1_loss(prediction, target, reduction="mean"):
    """Mean absolute error (torch.nn.L1Loss)."""
    prediction, target = _regression_pair(prediction, target, "l1_loss")
    return _reduce(abs(prediction - target), reduction)


def huber_loss(prediction, target, reduction="mean", delta=1.0):
    """Quadratic within ``delta`` of the target, linear beyond (torch.nn.HuberLoss)."""
    prediction, target = _regression_pair(prediction, target, "huber_loss")
    xp = _xp(prediction)
    d = prediction.data - target.data
    small = xp.abs(d) <= delta
    losses = xp.where(small, 0.5 * d * d, delta * (xp.abs(d) - 0.5 * delta))

    def huber_backward(g):
        gd = g * xp.where(small, d, delta * xp.sign(d))
        return gd, -gd
    return _reduce(_record(losses, (prediction, target), huber_backward), reduction)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Logistic loss on raw scores (torch.nn.BCEWithLogitsLoss), stable at +-1e4."""
    logits, target = _regression_pair(logits, target, "binary_cross_entropy_with_logits")
    xp = _xp(logits)
    x, t = logits.data, target.data
    losses = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))

    def bce_backward(g):
        e = xp.exp(-xp.abs(x))
        p = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return g * (p - t), -g * x
    return _reduce(_record(losses, (logits, target), bce_backward), reduction)


def multi_margin_loss(logits, target, margin=1.0, reduction="mean"):
    """Multi-class hinge loss (torch.nn.MultiMarginLoss, p=1)::

        loss_n = sum_{i != y_n} max(0, margin - x[n, y_n] + x[n, i]) / C

    A label outside [0, C): a ValueError on the CPU, a NaN loss on a GPU.
    """
    _check_logits(logits, "multi_margin_loss")
    labels = _class_labels(target, logits, "multi_margin_loss")
    rows = _xp(logits).arange(labels.shape[0])
    true_score = reshape(logits[rows, labels], (-1, 1))
    # The sum runs over every i, so take the i == y term, max(0, margin), back out
    # (for margin < 0 it is 0: subtracting margin itself would add |margin|).
    hinge = relu(margin - true_score + logits)
    losses = (sum(hinge, axis=1) - builtins.max(margin, 0)) / logits.shape[1]
    return _reduce(_checked_on_device(losses, labels, logits.shape[1]), reduction)
