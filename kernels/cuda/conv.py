"""2-D convolution on the GPU: im2col/col2im CUDA kernels around GEMMs.

The columns are laid out (C*kh*kw, N*OH*OW) so the whole batch is one GEMM in each
direction; ``rows_to_nchw`` / ``nchw_to_rows`` move between that channel-major
layout and NCHW, adding the bias on the way out and summing it on the way back.
An activation fused into the layer rides on those same two passes: applied after the
bias on the way out, its derivative (from the kept output) applied on the way back.
The GEMMs are cuBLAS (inside a CUDA-graph capture through minigrad's own handle, or
gemm.cu with ``MINIGRAD_CAPTURE_GEMM=custom``: ``gemm.matmul`` decides); the
transposed operands are views, never copies.
"""
import os
from typing import NamedTuple

import numpy as np

from .._fallback import backward_falls_back, falls_back_to
from .._xp import fast_dtype
from ..reference import conv as reference
from ..reference.activation import check_activation
from ..reference.windows import output_size
from .compile import (ACTIVATION_CODES, check_int32, cp, device_time_ms,
                      grid_1d, grid_2d, kernel, launch)
from .gemm import (MAX_WORKSPACE_ELEMENTS, matmul, matmul_views, product_route, sm_count,
                   split_k_for, stream_is_capturing, tf32_enabled)

_SOURCE = "conv.cu"

# The weight gradient sums over K = N*OH*OW columns into only O x C*kh*kw outputs, a
# few GEMM tiles, and how well cuBLAS shares such a long K among the SMs depends on
# the card and the library's heuristics (they have cliffs). MINIGRAD_CUDA_WGRAD picks:
# "single" (the default, the path measured on an H200) is one GEMM; "split" cuts the
# sum into slices of whole images, multiplied as one strided-batched GEMM over views
# of the same arrays (no copies) and then added up; "auto" times both (and one slice
# per image, where that many partial gradients fit gemm's workspace cap) on the first
# eager call for each shape, the way cudnn.benchmark does, and keeps the fastest.
# benchmarks/gpu_check.sh records what "auto" measures.
WGRAD_VARIABLE = "MINIGRAD_CUDA_WGRAD"
WGRAD_MODES = ("single", "split", "auto")

# "auto"'s choices: shape key -> {"splits": the fastest, "ms": {splits: ms, ...}}.
_tuned = {}


def weight_grad_mode():
    """The weight-gradient mode ``MINIGRAD_CUDA_WGRAD`` asks for (default "single")."""
    mode = os.environ.get(WGRAD_VARIABLE, "").strip().lower() or "single"
    if mode not in WGRAD_MODES:
        raise ValueError(f"{WGRAD_VARIABLE}={mode!r}; choose one of {WGRAD_MODES}")
    return mode


def split_weight_grad_slices(n, out_ch, rows, plane):
    """Slices of whole images "split" cuts the sum into: enough blocks to fill the GPU
    (gemm.split_k_for's rule), rounded down to a divisor of the batch."""
    wanted = split_k_for(out_ch, rows, n * plane, 1, sm_count())
    return max(d for d in range(1, min(n, wanted) + 1) if n % d == 0)


def weight_grad_splits(n, out_ch, rows, plane, dtype=np.float32):
    """Slices of whole images the weight gradient's sum is cut into (1: one GEMM), as
    the mode says; under "auto", the choice timed for this shape, or 1 before then."""
    mode = weight_grad_mode()
    if mode == "auto":
        entry = _tuned.get(_tuning_key(n, out_ch, rows, plane, dtype))
        return entry["splits"] if entry else 1
    return 1 if mode == "single" else split_weight_grad_slices(n, out_ch, rows, plane)


def weight_grad_tuning():
    """What "auto" has measured so far: one dict per shape, with the ms of each split
    count tried and the one chosen (for benchmarks and bug reports)."""
    return [dict(zip(("dtype", "batch", "out_channels", "rows", "plane", "gemm", "tf32"),
                     key), **entry) for key, entry in _tuned.items()]


def _tuning_key(n, out_ch, rows, plane, dtype):
    # The GEMM route and TF32 change which variant wins, so each has its own entry.
    return (np.dtype(dtype).name, n, out_ch, rows, plane, product_route(), tf32_enabled())


def _sliced_weight_grad(gy_rows, cols, n, plane, splits):
    """gy_rows (O, N*P) @ cols.T (N*P, K): one GEMM, or split over images and summed."""
    if splits == 1:
        return matmul(gy_rows, cols.T)
    out_ch, rows = gy_rows.shape[0], cols.shape[0]
    span, row_len, item = (n // splits) * plane, n * plane, gy_rows.itemsize
    as_strided = cp.lib.stride_tricks.as_strided
    # Slice s of both: the columns of images [s*n/S, (s+1)*n/S), read where they lie.
    a = as_strided(gy_rows, (splits, out_ch, span), (span * item, row_len * item, item))
    b = as_strided(cols, (splits, span, rows), (span * item, item, row_len * item))
    return matmul_views(a, b).sum(axis=0)


def _tuned_splits(gy_rows, cols, n, plane):
    """"auto": the fastest split count for this shape, timed once on first eager use.
    A capture cannot time anything; an untimed shape there takes one GEMM."""
    out_ch, rows = gy_rows.shape[0], cols.shape[0]
    key = _tuning_key(n, out_ch, rows, plane, gy_rows.dtype)
    entry = _tuned.get(key)
    if entry is None:
        if stream_is_capturing():
            return 1
        candidates = {1, split_weight_grad_slices(n, out_ch, rows, plane)}
        if n * out_ch * rows <= MAX_WORKSPACE_ELEMENTS:  # n partial gradients fit
            candidates.add(n)
        if len(candidates) == 1:  # nothing to choose (a batch of one): no timing, no wait
            ms = {1: None}
        else:
            ms = {s: device_time_ms(lambda s=s: _sliced_weight_grad(gy_rows, cols, n, plane, s))
                  for s in sorted(candidates)}
        entry = _tuned[key] = {"splits": min(ms, key=lambda s: ms[s] or 0.0), "ms": ms}
    return entry["splits"]


def _weight_grad(gy_rows, cols, n, plane):
    """The weight gradient gy_rows @ cols.T, computed the way the mode says."""
    if n == 0:  # an empty batch: nothing to split, one GEMM with K = 0 gives zeros
        splits = 1
    elif weight_grad_mode() == "auto":
        splits = _tuned_splits(gy_rows, cols, n, plane)
    else:
        splits = weight_grad_splits(n, gy_rows.shape[0], cols.shape[0], plane)
    return _sliced_weight_grad(gy_rows, cols, n, plane, splits)


class ConvCache(NamedTuple):
    """What backward needs from a forward that ran on these kernels (a forward sent to
    the reference kernel leaves the reference's cache, and backward follows it there)."""
    cols: object
    x_shape: tuple
    w: object
    has_bias: bool
    stride: tuple
    padding: tuple
    y: object
    act: int


@falls_back_to(reference.conv2d_forward, arrays=("x", "w"))
def conv2d_forward(x, w, b, stride, padding, activation=None):
    """y[n, o] = act(sum_{c,i,j} w[o, c, i, j] * xpad[n, c, s*y + i, s*x + j] + b[o]).

    x and w are promoted to NumPy's result type of the two; float32 and float64 run
    here, anything else (float16, integers) on the reference kernel, as on the CPU.
    The bias is cast to that dtype (the reference's rule).
    """
    act = ACTIVATION_CODES[check_activation(activation, "conv2d_forward")]
    n, c, h, wd = x.shape
    out_ch, w_in, kh, kw = w.shape
    if w_in != c:
        raise ValueError(f"conv2d_forward: input has {c} channels (shape {x.shape}) but "
                         f"the weight expects {w_in} (weight shape {w.shape})")
    if b is not None and b.shape != (out_ch,):
        raise ValueError(f"conv2d_forward: bias of shape {b.shape} does not match "
                         f"{out_ch} output channels")
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = output_size(h, kh, sh, ph), output_size(wd, kw, sw, pw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"conv2d_forward: input {x.shape} with padding {padding} is "
                         f"smaller than the kernel ({kh}, {kw})")
    dtype = fast_dtype(x, w)
    x = cp.ascontiguousarray(x, dtype=dtype)  # a copy only to convert or compact
    w = cp.ascontiguousarray(w, dtype=dtype)
    rows, row_len = c * kh * kw, n * oh * ow
    check_int32("conv2d_forward", columns_per_row=row_len, input_plane=h * wd,
                batch_times_channels=n * max(c, out_ch))
    cols = cp.empty((rows, row_len), dtype=dtype)
    launch(kernel(_SOURCE, "im2col", dtype), grid_2d(row_len, rows),
           (x, cols, np.int32(n), np.int32(c), np.int32(h), np.int32(wd), np.int32(kh),
            np.int32(kw), np.int32(sh), np.int32(sw), np.int32(ph), np.int32(pw),
            np.int32(oh), np.int32(ow)))
    y_rows = matmul(w.reshape(out_ch, rows), cols)
    y = cp.empty((n, out_ch, oh, ow), dtype=dtype)
    # Without a bias, y_rows only fills the pointer slot: the kernel never reads it.
    bias = y_rows if b is None else cp.ascontiguousarray(b, dtype=dtype)
    launch(kernel(_SOURCE, "rows_to_nchw", dtype), grid_2d(oh * ow, n * out_ch),
           (y_rows, bias, y, np.int32(n), np.int32(out_ch), np.int32(oh * ow),
            np.int32(b is not None), np.int32(act)))
    return y, ConvCache(cols, x.shape, w, b is not None, stride, padding, y, act)


@backward_falls_back(reference.conv2d_backward, cache_type=ConvCache)
def conv2d_backward(gy, cache, need_input_grad=True):
    """Gradients of conv2d_forward with respect to x, w and b, in the forward's dtype
    (a gradient of another dtype is cast to it, as on the CPU)."""
    cols, x_shape, w, has_bias, (sh, sw), (ph, pw), y, act = cache
    if gy.shape != y.shape:  # the kernels index by the forward's sizes
        raise ValueError(f"conv2d_backward: gradient of shape {gy.shape} does not match "
                         f"the convolution output {y.shape}")
    dtype = w.dtype
    gy = cp.ascontiguousarray(gy, dtype=dtype)
    n, out_ch, oh, ow = gy.shape
    plane = oh * ow
    gy_rows = cp.empty((out_ch, n * plane), dtype=dtype)
    # Per-(n, o) sums in float64, reduced over n by bias_grad in a fixed order
    # (without a bias the kernel never touches them: any pointer will do).
    plane_sums = cp.empty(n * out_ch, dtype=np.float64) if has_bias else gy_rows
    launch(kernel(_SOURCE, "nchw_to_rows", dtype), grid_1d(n * out_ch, 1),
           (gy, y, gy_rows, plane_sums, np.int32(n), np.int32(out_ch), np.int32(plane),
            np.int32(has_bias), np.int32(act)))
    gw = _weight_grad(gy_rows, cols, n, plane).reshape(w.shape)
    gb = None
    if has_bias:
        gb = cp.empty(out_ch, dtype=dtype)
        launch(kernel(_SOURCE, "bias_grad", dtype), grid_1d(out_ch),
               (plane_sums, gb, np.int32(n), np.int32(out_ch)))
    gx = None
    if need_input_grad:
        _, c, kh, kw = w.shape
        gcols = matmul(w.reshape(out_ch, -1).T, gy_rows)
        _, _, h, wd = x_shape
        gx = cp.empty(x_shape, dtype=dtype)
        launch(kernel(_SOURCE, "col2im", dtype), grid_2d(h * wd, n * c),
               (gcols, gx, np.int32(n), np.int32(c), np.int32(h), np.int32(wd),
                np.int32(kh), np.int32(kw), np.int32(sh), np.int32(sw), np.int32(ph),
                np.int32(pw), np.int32(oh), np.int32(ow)))
    return gx, gw, gb
