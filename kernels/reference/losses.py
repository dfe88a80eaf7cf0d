"""Fused, numerically stable softmax + cross-entropy on integer labels."""
import numpy as np

from .._xp import array_module


def check_labels(logits, labels, what):
    """ValueError naming ``what`` unless ``logits`` is (N, classes) and ``labels`` (N,)."""
    if logits.ndim != 2:
        raise ValueError(f"{what}: expected logits of shape (N, classes), got {logits.shape}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"{what}: labels of shape {labels.shape} do not match logits of "
                         f"shape {logits.shape}")


def softmax_cross_entropy_forward(logits, labels):
    """Per-sample -log softmax(logits)[label], via the log-sum-exp shift.

    A label outside [0, classes) gives a NaN loss, as the CUDA kernel does: on a GPU
    nothing may read the labels back to check them, and CuPy's indexing would wrap
    such a label round to another class (the op layer checks labels on the CPU).
    """
    check_labels(logits, labels, "softmax_cross_entropy_forward")
    xp = array_module(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    log_probs = shifted - log_norm
    bad = (labels < 0) | (labels >= logits.shape[1])
    labels = xp.where(bad, 0, labels)  # any class: its loss is replaced below
    losses = -xp.take_along_axis(log_probs, labels[:, None], axis=1)[:, 0]
    return xp.where(bad, losses.dtype.type(np.nan), losses), (log_probs, labels)


def softmax_cross_entropy_backward(gloss, cache):
    """d loss_n / d logits = gloss_n * (softmax - onehot(label_n))."""
    xp = array_module(gloss)
    log_probs, labels = cache
    grad = xp.exp(log_probs)
    grad[xp.arange(labels.shape[0]), labels] -= 1
    return grad * gloss[:, None]
