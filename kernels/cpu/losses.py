"""Fused softmax + cross-entropy on integer labels (Numba, one pass per row)."""
import math
from typing import NamedTuple

import numpy as np

from ..reference import losses as reference

from .._fallback import backward_falls_back, falls_back_to
from ._jit import serial_kernel


class SoftmaxCache(NamedTuple):
    """The log-probabilities and the int64 labels (the reference's cache has the same
    two, as a plain tuple)."""
    log_probs: np.ndarray
    labels: np.ndarray


@serial_kernel
def _softmax_cross_entropy(logits, labels, losses, log_probs):
    """log_probs = log_softmax(logits) by the max shift; losses = -log_probs[label]."""
    n, k = logits.shape
    for r in range(n):
        top = logits[r, 0]
        for j in range(1, k):
            top = max(top, logits[r, j])
        total = 0.0
        for j in range(k):
            total += math.exp(logits[r, j] - top)
        log_norm = math.log(total)
        for j in range(k):
            log_probs[r, j] = (logits[r, j] - top) - log_norm
        losses[r] = -log_probs[r, labels[r]]


@serial_kernel
def _softmax_cross_entropy_backward(gloss, log_probs, labels, grad):
    """grad[r] = gloss[r] * (softmax[r] - onehot(labels[r]))."""
    n, k = log_probs.shape
    for r in range(n):
        for j in range(k):
            p = math.exp(log_probs[r, j])
            if j == labels[r]:
                p -= 1
            grad[r, j] = p * gloss[r]


@falls_back_to(reference.softmax_cross_entropy_forward, arrays=("logits",))
def softmax_cross_entropy_forward(logits, labels):
    """Per-sample -log softmax(logits)[label] for logits (N, C) and integer labels (N,)."""
    logits = np.ascontiguousarray(logits)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    reference.check_labels(logits, labels, "softmax_cross_entropy_forward")
    n, k = logits.shape
    if n and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {k}), got values "
                         f"from {labels.min()} to {labels.max()}")
    losses = np.empty(n, logits.dtype)
    log_probs = np.empty((n, k), logits.dtype)
    _softmax_cross_entropy(logits, labels, losses, log_probs)
    return losses, SoftmaxCache(log_probs, labels)


@backward_falls_back(reference.softmax_cross_entropy_backward, cache_type=SoftmaxCache)
def softmax_cross_entropy_backward(gloss, cache):
    """d loss_n / d logits = gloss_n * (softmax - onehot(label_n))."""
    log_probs, labels = cache
    gloss = np.ascontiguousarray(gloss, dtype=log_probs.dtype)
    grad = np.empty_like(log_probs)
    _softmax_cross_entropy_backward(gloss, log_probs, labels, grad)
    return grad
