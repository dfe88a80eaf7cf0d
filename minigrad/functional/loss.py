"""Losses' functional forms (the classes in ``minigrad.losses`` call these):
``cross_entropy``, ``nll_loss``, ``mse_loss``, ``l1_loss``, ``huber_loss``,
``smooth_l1_loss``, ``binary_cross_entropy_with_logits``, ``binary_cross_entropy``,
``kl_div``, ``multi_margin_loss``. Those added for torch's full signatures take its
positional order (``size_average`` and ``reduce``, deprecated there, must be None)."""
import builtins
import math

import numpy as np

from .. import backend
from ..creation import constant_like
from ..tensor import Tensor
from ..utils import unwrap
from ._core import _record, _xp, unbroadcast
from .activation import log_softmax, relu
from .elementwise import abs
from .reduce import mean, sum
from .shape import reshape, transpose


def _reduce(losses, reduction):
    if reduction == "mean":
        return mean(losses)
    if reduction == "sum":
        return sum(losses)
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_labels(target, logits, loss, ignore_index=None):
    """Integer class labels as an array, checked against the logits' class count.

    On the CPU a label outside [0, classes) (other than ``ignore_index``) is a
    ValueError naming it. On a GPU it is
    not checked on the host, since reading the check back would wait for the GPU on
    every training step (and a CUDA graph capture cannot wait at all): the loss comes
    out NaN instead, on the device (the CUDA softmax cross-entropy kernel does it
    itself, :func:`_nan_for_bad_labels` for the others; CuPy's indexing would wrap the
    label round to another class), and a NaN loss stops ``fit`` at its next check.
    While ``backend.capturing()`` the CPU check is skipped too.
    """
    labels = unwrap(target)
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
        if ignore_index is not None:
            bad &= labels != ignore_index
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


def _no_legacy(op, size_average, reduce):
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated in torch and not "
                         f"supported; use reduction='mean', 'sum' or 'none'")


def _class_weight(weight, like, n_classes, op):
    """``weight`` (C,) as a constant array in ``like``'s dtype and device, or None."""
    if weight is None:
        return None
    if isinstance(weight, str):
        raise TypeError(f"{op}: weight must be a tensor of {n_classes} class weights, got "
                        f"{weight!r} (pass reduction= by keyword)")
    weight = constant_like(weight, like)
    if weight.shape != (n_classes,) or weight.dtype.kind != "f":
        raise ValueError(f"{op}: weight must be {n_classes} floats, one per class, got shape "
                         f"{weight.shape} and dtype {weight.dtype}")
    return weight.data.astype(like.dtype, copy=False)


def _classes_last(scores, op):
    """Scores (N, C, d1, ...) as rows (N * d1 * ..., C), with the shape of one loss
    per row, (N, d1, ...); (N, C) as they are; an unbatched (C,) as one row, shape ()."""
    if scores.ndim == 0:
        raise ValueError(f"{op}: expected scores of shape (C,), (N, C) or (N, C, d1, ...), "
                         f"got a 0-d tensor")
    if scores.ndim == 1:
        return reshape(scores, (1, -1)), ()
    if scores.ndim == 2:
        return scores, scores.shape[:1]
    shape = scores.shape[:1] + scores.shape[2:]
    moved = transpose(scores, (0,) + tuple(range(2, scores.ndim)) + (1,))
    return reshape(moved, (-1, scores.shape[1])), shape


def _flat_labels(target, scores, rows, shape, op, ignore_index):
    """Labels of ``shape`` (one per loss) as the (rows,) array the flat scores need."""
    labels = target.data if isinstance(target, Tensor) else _xp(scores).asarray(target)
    if tuple(labels.shape) != shape:
        raise ValueError(f"{op}: scores of shape {scores.shape} need labels of shape {shape}, "
                         f"got {tuple(labels.shape)}")
    return _class_labels(labels.reshape(-1), rows, op, ignore_index)


def _weighted_nll(log_probs, labels, weight, ignore_index, smoothing=0.0):
    """Per-row losses of (rows, C) log-probabilities, and the constant the mean divides
    by: torch's sum of the rows' class weights (ignored rows weigh 0), with
    ``smoothing`` of the loss spread evenly over the classes (label smoothing)."""
    xp = _xp(log_probs)
    n_classes = log_probs.shape[1]
    kept = labels != ignore_index
    safe = xp.where(kept, labels, 0)
    row_weight = kept.astype(log_probs.dtype)
    if weight is not None:
        row_weight = row_weight * weight[safe]
    rows = xp.arange(labels.shape[0])

    def weighted_nll_backward(g):
        full = xp.zeros(log_probs.shape, dtype=g.dtype)
        full[rows, safe] = -g * row_weight  # one label per row: no index repeats
        return (full,)
    losses = _record(-log_probs.data[rows, safe] * row_weight, (log_probs,),
                     weighted_nll_backward)
    if smoothing:
        spread = sum(log_probs * (1 if weight is None else weight), axis=1)
        losses = losses * (1 - smoothing) - spread * (kept.astype(log_probs.dtype)
                                                       * (smoothing / n_classes))
    losses = _checked_on_device(losses, safe, n_classes)
    return losses, row_weight.sum()


def _reduce_rows(losses, shape, total_weight, reduction):
    """One loss per row reduced; for "none" given the shape of the labels."""
    if reduction == "mean":
        return sum(losses) / total_weight
    if reduction == "none":
        return losses if losses.shape == shape else reshape(losses, shape)
    return _reduce(losses, reduction)


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy on raw scores (torch.nn.functional.cross_entropy).

    ``input`` (N, C), (N, C, d1, ...) or (C,); ``target`` integer class labels of
    shape (N, d1, ...), or class probabilities of the input's shape. ``weight`` (C,)
    weighs each class (the mean divides by the labels' total weight, as torch);
    labels equal to ``ignore_index`` add nothing; ``label_smoothing`` mixes the
    target with the uniform distribution. A label outside [0, C) is a ValueError on
    the CPU and a NaN loss on a GPU, where checking it would wait for the device
    (see ``_class_labels``); so is a label of -100 on a GPU unless ``ignore_index``
    is passed. The plain case (no weight, no smoothing, nothing ignored) runs the
    device's fused softmax cross-entropy kernel.
    """
    _no_legacy("cross_entropy", size_average, reduce)
    _check_reduction(reduction)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], "
                         f"got {label_smoothing}")
    rows, shape = _classes_last(input, "cross_entropy")
    n_classes = rows.shape[1]
    weight = _class_weight(weight, input, n_classes, "cross_entropy")
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != input.shape:
            raise ValueError(f"cross_entropy: probability targets of shape {target.shape} "
                             f"do not match the input's {input.shape}")
        probs = _classes_last(target, "cross_entropy")[0]
        if label_smoothing:
            probs = probs * (1 - label_smoothing) + label_smoothing / n_classes
        log_probs = log_softmax(rows, axis=1)
        if weight is not None:
            log_probs = log_probs * weight
        losses = -sum(probs * log_probs, axis=1)
        return _reduce_rows(losses, shape, losses.shape[0], reduction)
    labels = _flat_labels(target, input, rows, shape, "cross_entropy", ignore_index)
    ignoring = (ignore_index != -100 if input.device != "cpu"
                else bool((labels == ignore_index).any()))
    if weight is not None or label_smoothing or ignoring:
        losses, total = _weighted_nll(log_softmax(rows, axis=1), labels, weight, ignore_index,
                                      label_smoothing)
        return _reduce_rows(losses, shape, total, reduction)
    forward, backward = backend.kernels("softmax_cross_entropy_forward",
                                        "softmax_cross_entropy_backward",
                                        device=input.device)
    losses, cache = forward(rows.data, labels)

    def cross_entropy_backward(g):
        return (backward(g, cache),)
    losses = _record(losses, (rows,), cross_entropy_backward)
    return _reduce(losses, reduction) if reduction == "mean" \
        else _reduce_rows(losses, shape, None, reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of integer labels under log-probabilities
    (torch.nn.functional.nll_loss): ``input`` (N, C), (N, C, d1, ...) or (C,);
    ``weight`` and ``ignore_index`` as in :func:`cross_entropy`.

    A label outside [0, C): a ValueError on the CPU, a NaN loss on a GPU.
    """
    _no_legacy("nll_loss", size_average, reduce)
    _check_reduction(reduction)
    rows, shape = _classes_last(input, "nll_loss")
    weight = _class_weight(weight, input, rows.shape[1], "nll_loss")
    labels = _flat_labels(target, input, rows, shape, "nll_loss", ignore_index)
    losses, total = _weighted_nll(rows, labels, weight, ignore_index)
    return _reduce_rows(losses, shape, total, reduction)


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


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",
                   beta=1.0):
    """0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta beyond (torch's smooth_l1_loss):
    the Huber loss divided by beta; beta = 0 is the L1 loss."""
    _no_legacy("smooth_l1_loss", size_average, reduce)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be a non-negative number, got {beta!r}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    return huber_loss(input, target, reduction, beta) / beta


def _elementwise_weight(weight, losses, op):
    """``losses`` times a constant ``weight`` that broadcasts to their shape."""
    if weight is None:
        return losses
    weight = constant_like(weight, losses)
    try:
        np.broadcast_shapes(weight.shape, losses.shape)
    except ValueError:
        raise ValueError(f"{op}: weight of shape {weight.shape} does not broadcast to the "
                         f"input's {losses.shape}") from None
    return losses * weight.data.astype(losses.dtype, copy=False)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Logistic loss on raw scores (torch.nn.BCEWithLogitsLoss), stable at +-1e4.

    ``pos_weight`` (broadcast along the last axis, e.g. one per class) weighs the
    positive term; ``weight`` (broadcast to the input) weighs each element.
    """
    _no_legacy("binary_cross_entropy_with_logits", size_average, reduce)
    if isinstance(weight, str):
        raise TypeError(f"binary_cross_entropy_with_logits: weight must be a tensor, got "
                        f"{weight!r} (pass reduction= by keyword)")
    logits, target = _regression_pair(input, target, "binary_cross_entropy_with_logits")
    xp = _xp(logits)
    x, t = logits.data, target.data
    inputs = (logits, target)
    if pos_weight is not None:
        pos_weight = constant_like(pos_weight, logits)
        try:
            np.broadcast_shapes(pos_weight.shape, x.shape)
        except ValueError:
            raise ValueError(f"binary_cross_entropy_with_logits: pos_weight of shape "
                             f"{pos_weight.shape} does not broadcast to the input's "
                             f"{x.shape}") from None
        inputs += (pos_weight,)
    # softplus(-x) = log(1 + exp(-x)), the loss of a positive, without overflow
    softplus_neg = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
    scale = 1 if pos_weight is None else 1 + (pos_weight.data - 1) * t
    losses = (1 - t) * x + scale * softplus_neg

    def bce_backward(g):
        e = xp.exp(-xp.abs(x))
        p_neg = xp.where(x >= 0, e / (1 + e), 1 / (1 + e))  # sigmoid(-x)
        gx = g * ((1 - t) - scale * p_neg)
        if pos_weight is None:
            return gx, -g * x
        gt = g * (-x + (pos_weight.data - 1) * softplus_neg)
        return gx, gt, unbroadcast(g * t * softplus_neg, pos_weight.shape)
    losses = _record(losses, inputs, bce_backward, "binary_cross_entropy_with_logits")
    return _reduce(_elementwise_weight(weight, losses, "binary_cross_entropy_with_logits"),
                   reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) on probabilities ``input`` in [0, 1]
    (torch.nn.BCELoss): each log clamped at -100, as torch, so p = 0 or 1 gives a
    finite loss. Outside [0, 1] is a ValueError on the CPU (not checked on a GPU)."""
    _no_legacy("binary_cross_entropy", size_average, reduce)
    probs, target = _regression_pair(input, target, "binary_cross_entropy")
    xp = _xp(probs)
    p, t = probs.data, target.data
    if probs.device == "cpu" and not backend.is_capturing() and p.size \
            and not ((p >= 0) & (p <= 1)).all():
        raise ValueError("binary_cross_entropy: the input must hold probabilities in [0, 1]; "
                         "for raw scores use binary_cross_entropy_with_logits")
    with np.errstate(divide="ignore"):
        log_p = xp.maximum(xp.log(p), -100)
        log_q = xp.maximum(xp.log1p(-p), -100)
    losses = -(t * log_p + (1 - t) * log_q)

    def binary_cross_entropy_backward(g):
        # torch's: (p - t) / max(p (1 - p), 1e-12)
        gp = g * (p - t) / xp.maximum((1 - p) * p, 1e-12)
        return gp, g * (log_q - log_p)
    losses = _record(losses, (probs, target), binary_cross_entropy_backward)
    return _reduce(_elementwise_weight(weight, losses, "binary_cross_entropy"), reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False):
    """Kullback-Leibler divergence of ``target`` from log-probabilities ``input``
    (torch.nn.functional.kl_div), pointwise target * (log target - input), 0 where
    target is 0; ``log_target=True`` takes log-probabilities as the target.
    ``reduction="batchmean"`` divides the sum by the batch size (the true KL
    divergence); "mean" divides by every element, as torch."""
    _no_legacy("kl_div", size_average, reduce)
    if reduction not in ("mean", "sum", "none", "batchmean"):
        raise ValueError(f"kl_div: reduction must be 'mean', 'batchmean', 'sum' or 'none', "
                         f"got {reduction!r}")
    log_q, target = _regression_pair(input, target, "kl_div")
    xp = _xp(log_q)
    x, t = log_q.data, target.data
    if log_target:
        p = xp.exp(t)
        losses = p * (t - x)
    else:
        positive = t > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_t = xp.where(positive, xp.log(xp.where(positive, t, 1)), 0)
        # xlogy(t, t): 0 at t = 0, NaN for t < 0, as torch
        losses = xp.where(t < 0, math.nan, t * log_t) - t * x

    def kl_div_backward(g):
        if log_target:
            return -g * p, g * p * (t - x + 1)
        # d/dt of xlogy(t, t) is log t + 1; at t = 0 torch's is 0/0 = NaN too
        return -g * t, g * (xp.where(positive, log_t + 1, math.nan) - x)
    losses = _record(losses, (log_q, target), kl_div_backward)
    if reduction == "batchmean":
        return sum(losses) / (x.shape[0] if x.ndim else 1)
    return _reduce(losses, reduction)


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
