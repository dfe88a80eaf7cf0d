"""Fused softmax + cross-entropy on the GPU (CUDA kernels in softmax_ce.cu)."""
import numpy as np

from .compile import BLOCK, check_int32, cp, float_dtype, grid_1d, kernel, launch

_SOURCE = "softmax_ce.cu"
_ROWS_PER_BLOCK = BLOCK // 32  # the forward kernel gives each row one warp


def softmax_cross_entropy_forward(logits, labels):
    """Per-sample -log softmax(logits)[label], via the log-sum-exp shift.

    A label outside [0, classes) gives a NaN loss rather than an error, because
    checking it would wait for the GPU.
    """
    logits = cp.ascontiguousarray(logits)
    dtype = float_dtype("softmax_cross_entropy_forward", logits)
    if logits.ndim != 2:
        raise ValueError("softmax_cross_entropy_forward: expected logits of shape "
                         f"(N, classes), got {logits.shape}")
    rows, classes = logits.shape
    labels = cp.ascontiguousarray(cp.asarray(labels), dtype=np.int64)
    if labels.shape != (rows,):
        raise ValueError(f"softmax_cross_entropy_forward: labels of shape {labels.shape} "
                         f"do not match {rows} rows of logits")
    check_int32("softmax_cross_entropy_forward", classes=classes)
    losses = cp.empty(rows, dtype=dtype)
    row_max = cp.empty(rows, dtype=dtype)
    log_sum = cp.empty(rows, dtype=dtype)
    launch(kernel(_SOURCE, "softmax_ce_forward", dtype), grid_1d(rows, _ROWS_PER_BLOCK),
           (logits, labels, losses, row_max, log_sum, np.int64(rows), np.int32(classes)))
    return losses, (logits, labels, row_max, log_sum)


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
