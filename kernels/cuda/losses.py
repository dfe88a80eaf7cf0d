"""Fused softmax + cross-entropy on the GPU (CUDA kernels in softmax_ce.cu).

float32 and float64 logits run here; others (float16) go to the reference kernel,
as on the CPU (``kernels._fallback``), and their backward follows them there.
"""
from typing import NamedTuple

import numpy as np

from .._fallback import backward_falls_back, falls_back_to
from ..reference import losses as reference
from .compile import BLOCK, check_int32, cp, grid_1d, kernel, launch

_SOURCE = "softmax_ce.cu"
_ROWS_PER_BLOCK = BLOCK // 32  # the forward kernel gives each row one warp


class SoftmaxCrossEntropyCache(NamedTuple):
    """The logits, the labels (int64) and each row's max and log-sum-exp."""
    logits: object
    labels: object
    row_max: object
    log_sum: object


@falls_back_to(reference.softmax_cross_entropy_forward, arrays=("logits",))
def softmax_cross_entropy_forward(logits, labels):
    """Per-sample -log softmax(logits)[label], via the log-sum-exp shift.

    A label outside [0, classes) gives a NaN loss rather than an error, because
    checking it would wait for the GPU; the reference path for float16 does the same.
    """
    labels = cp.ascontiguousarray(cp.asarray(labels), dtype=np.int64)
    reference.check_labels(logits, labels, "softmax_cross_entropy_forward")
    rows, classes = logits.shape
    logits = cp.ascontiguousarray(logits)
    dtype = logits.dtype
    check_int32("softmax_cross_entropy_forward", classes=classes)
    losses = cp.empty(rows, dtype=dtype)
    row_max = cp.empty(rows, dtype=dtype)
    log_sum = cp.empty(rows, dtype=dtype)
    launch(kernel(_SOURCE, "softmax_ce_forward", dtype), grid_1d(rows, _ROWS_PER_BLOCK),
           (logits, labels, losses, row_max, log_sum, np.int64(rows), np.int32(classes)))
    return losses, SoftmaxCrossEntropyCache(logits, labels, row_max, log_sum)


@backward_falls_back(reference.softmax_cross_entropy_backward,
                     cache_type=SoftmaxCrossEntropyCache)
def softmax_cross_entropy_backward(gloss, cache):
    """d loss_n / d logits = gloss_n * (softmax - onehot(label_n))."""
    logits, labels, row_max, log_sum = cache
    rows, classes = logits.shape
    gloss = cp.ascontiguousarray(gloss, dtype=logits.dtype)
    if gloss.shape != (rows,):
        raise ValueError(f"softmax_cross_entropy_backward: gradient of shape {gloss.shape} "
                         f"does not match the {rows} per-sample losses")
    glogits = cp.empty_like(logits)
    launch(kernel(_SOURCE, "softmax_ce_backward", logits.dtype), grid_1d(rows * classes),
           (gloss, logits, labels, row_max, log_sum, glogits, np.int64(rows),
            np.int32(classes)))
    return glogits
