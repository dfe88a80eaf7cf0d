"""2-D convolution on the CPU: Numba im2col/col2im around batched BLAS GEMMs.

Layout (chosen by measurement, see benchmarks/README.md): the columns are kept per
image as ``cols[n]`` of shape (C*kh*kw [+1], OH*OW), so

    forward      y[n]  = W2 @ cols[n]          -> (O, OH*OW): already NCHW
    weight grad  gw2.T = sum_n cols[n] @ gy[n].T
    input grad   gcols[n] = W.T @ gy[n], then col2im

are stacked GEMMs (``np.matmul`` over images) with no transposes of activations.
When the layer has a bias, ``cols`` carries one extra row of ones and ``W2`` the bias
as an extra column: the forward GEMM adds the bias and the weight-gradient GEMM sums
the bias gradient for free (one more row of K is cheaper than a separate pass over
the output). The columns stay in the cache, so backward never redoes im2col.

A fused activation (``activation=``) costs no pass of its own over memory: forward
applies it to each slice right after the GEMM writes it (the GEMM writes one
slice-sized scratch buffer, still in cache, and the activation writes ``y`` from it:
a pass with one array as both input and output ran scalar, see
``activation.forward_into``), and backward turns each slice of ``gy`` into the
pre-activation gradient (taken from the cached ``y``) in another slice-sized scratch
buffer just before the slice's GEMMs read it.
"""
import os
import time
from typing import NamedTuple, Optional

import numpy as np
from numba import prange

from ..reference import conv as reference
from ..reference.activation import check_activation
from ..reference.windows import output_size

from .._fallback import backward_falls_back, falls_back_to
from .._xp import fast_dtype
from . import winograd
from ._buffers import POOL
from ._jit import cpu_kernel
from ._threads import batch_slices, run_slices
from .activation import backward_into, forward_into

# The batch goes through im2col + GEMM (and GEMM + col2im) in slices of about this
# many bytes of columns, so the second kernel reads what the first just wrote from
# the cache instead of from memory (benchmarks/README.md, "Design measurements":
# conv-slices).
CHUNK_BYTES = 4 << 20

# "auto" picks between im2col and Winograd (where Winograd applies: 3x3, stride 1) by
# timing both on the first convolution of each geometry, as cuDNN's benchmark mode
# does: which one wins depends on the CPU, the channel counts (Winograd's GEMMs have
# K = C, too thin for conv1's 3 channels), the image size and the batch (Winograd's
# weight transform costs the same for one image as for 256). Convolutions of fewer
# multiply-adds than this are not worth a measurement (or the cost of Winograd's
# weight transform) and take im2col, the exact path.
MEASURE_MIN_WORK = 1 << 25
# The trial runs this many of the batch's images (all of a smaller batch) through
# each algorithm's forward and backward, twice, and keeps the faster's best time.
MEASURE_IMAGES = 8
_measured = {}  # (x shape, w shape, padding, dtype, activation) -> algorithm


@cpu_kernel
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols):
    """cols[n, (c*kh + i)*kw + j, oy*ow + ox] = xpad[n, c, oy*sh + i*dh, ox*sw + j*dw].

    ``oh``/``ow`` may be fewer windows than the input admits (a transposed
    convolution's output_padding). Rows past C*kh*kw (the bias row) are set to one. Parallel over (image, channel):
    each task reads one input plane (cache resident) and writes kh*kw whole rows; the
    channel-0 task also writes its image's bias row (an input with no channels still
    has one task per image, for that row). Written the plain way on purpose:
    sub-array views inside the loop cost an atomic reference count each, and this
    per-element bounds test is what LLVM vectorises (benchmarks/README.md, "Design
    measurements": im2col-loop).
    """
    n_img, n_ch, h, w = x.shape
    rows = n_ch * kh * kw
    tasks_per_image = max(n_ch, 1)
    for task in prange(n_img * tasks_per_image):
        b = task // tasks_per_image
        c = task % tasks_per_image
        if c < n_ch:
            for i in range(kh):
                for j in range(kw):
                    r = (c * kh + i) * kw + j
                    for oy in range(oh):
                        iy = oy * sh + i * dh - ph
                        base = oy * ow
                        if iy < 0 or iy >= h:
                            for ox in range(ow):
                                cols[b, r, base + ox] = 0
                        else:
                            for ox in range(ow):
                                ix = ox * sw + j * dw - pw
                                if ix >= 0 and ix < w:
                                    cols[b, r, base + ox] = x[b, c, iy, ix]
                                else:
                                    cols[b, r, base + ox] = 0
        if c == 0:
            for r in range(rows, cols.shape[1]):
                for p in range(oh * ow):
                    cols[b, r, p] = 1


@cpu_kernel
def _col2im(gcols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx):
    """gx[n, c] = sum of the window rows of gcols scattered back (adjoint of _im2col).

    Parallel over (image, channel): each task owns one output plane, so no two
    tasks write the same element.
    """
    n_img, n_ch, h, w = gx.shape
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        gx[b, c] = 0
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                for oy in range(oh):
                    iy = oy * sh + i * dh - ph
                    if iy < 0 or iy >= h:
                        continue
                    base = oy * ow
                    for ox in range(ow):
                        ix = ox * sw + j * dw - pw
                        if ix >= 0 and ix < w:
                            gx[b, c, iy, ix] += gcols[b, r, base + ox]


class ConvCache(NamedTuple):
    """What backward needs: the columns (with the bias row, if any), the geometry, and
    for a fused activation its name and the activated output (None without one)."""
    cols: np.ndarray
    x_shape: tuple
    w: np.ndarray
    has_bias: bool
    stride: tuple
    padding: tuple
    activation: Optional[str]
    y: Optional[np.ndarray]


@falls_back_to(reference.conv2d_forward, arrays=("x", "w"))
def conv2d_forward(x, w, b, stride, padding, activation=None):
    """y = act(conv2d(x, w) + b) (NCHW, OIHW), act None, "relu", "tanh" or "sigmoid";
    see ``kernels`` for the contract."""
    check_activation(activation, "conv2d_forward")
    # The output takes x and w's dtype and the bias is cast to it, as the
    # reference's in-place ``y += b`` does.
    dtype = fast_dtype(x, w)
    x = np.ascontiguousarray(x, dtype=dtype)
    w = np.ascontiguousarray(w, dtype=dtype)
    choice = algorithm(x.shape, w.shape, stride, padding, dtype, activation,
                       trial=lambda algo: _trial_seconds(algo, x, w, b, padding, activation))
    if choice == "winograd":
        return winograd.conv2d_forward(x, w, b, tuple(padding), activation, dtype)
    return _im2col_forward(x, w, b, stride, padding, activation, dtype)


def _im2col_forward(x, w, b, stride, padding, activation, dtype):
    """``conv2d_forward`` through im2col and GEMMs; x, w contiguous of ``dtype``."""
    n, c, h, wd = x.shape
    out_ch, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = output_size(h, kh, sh, ph), output_size(wd, kw, sw, pw)
    k = c * kh * kw
    has_bias = b is not None
    rows = k + 1 if has_bias else k
    cols = POOL.empty("conv.cols", (n, rows, oh * ow), dtype)
    if has_bias:
        w2 = np.empty((out_ch, rows), dtype)
        w2[:, :k] = w.reshape(out_ch, k)
        w2[:, k] = b
    else:
        w2 = w.reshape(out_ch, k)
    y = POOL.empty("conv.y", (n, out_ch, oh * ow), dtype)
    chunks = _chunks(n, rows * oh * ow * cols.itemsize)
    slice_images = _slice_images(chunks)

    def work(lo, hi):
        # Slice by slice, the GEMM reads columns im2col has just left in the cache.
        _im2col(x[lo:hi], kh, kw, sh, sw, ph, pw, 1, 1, oh, ow, cols[lo:hi])
        if activation is None:
            np.matmul(w2, cols[lo:hi], out=y[lo:hi])
        else:  # and the activation reads what the GEMM has just written
            pre = POOL.empty("conv.pre", (slice_images, out_ch, oh * ow), dtype)
            np.matmul(w2, cols[lo:hi], out=pre[:hi - lo])
            forward_into(activation, pre[:hi - lo].reshape(-1), y[lo:hi].reshape(-1))
    run_slices(work, chunks)
    y = y.reshape(n, out_ch, oh, ow)
    cache = ConvCache(cols, x.shape, w, has_bias, (sh, sw), (ph, pw), activation,
                      None if activation is None else y)
    return y, cache


@backward_falls_back(reference.conv2d_backward, cache_type=(ConvCache, winograd.WinogradCache))
def conv2d_backward(gy, cache, need_input_grad=True):
    """(gx or None, gw, gb or None) of ``conv2d_forward``; reads the cached columns."""
    if isinstance(cache, winograd.WinogradCache):
        return winograd.conv2d_backward(gy, cache, need_input_grad)
    return _im2col_backward(gy, cache, need_input_grad)


def _im2col_backward(gy, cache, need_input_grad):
    """``conv2d_backward`` of ``_im2col_forward``'s cache."""
    cols, x_shape, w, has_bias, (sh, sw), (ph, pw), activation, y = cache
    dtype = cols.dtype
    n, out_ch, oh, ow = gy.shape
    gy = np.ascontiguousarray(gy, dtype=dtype).reshape(n, out_ch, oh * ow)
    rows = cols.shape[1]
    _, c, kh, kw = w.shape
    k = c * kh * kw
    # Weight gradient, transposed: cols[n] @ gy[n].T per image into a stacked buffer,
    # then one reduction over the batch: OpenBLAS runs this orientation faster than
    # gy[n] @ cols[n].T or one GEMM with K = N*OH*OW (benchmarks/README.md, "Design
    # measurements": weight-grad-orientation).
    per_image = POOL.empty("conv.gw", (n, rows, out_ch), dtype)
    chunks = _chunks(n, rows * oh * ow * cols.itemsize)
    slice_images = _slice_images(chunks)
    gx = POOL.empty("conv.gx", x_shape, dtype) if need_input_grad else None
    w_t = w.reshape(out_ch, k).T
    if activation is not None:
        y = y.reshape(n, out_ch, oh * ow)

    def work(lo, hi):
        g = gy[lo:hi]
        if activation is not None:  # the GEMMs below read it from cache
            # The pre-activation gradient, one slice at a time, like the columns.
            g = POOL.empty("conv.gpre", (slice_images, out_ch, oh * ow), dtype)[:hi - lo]
            backward_into(activation, gy[lo:hi].reshape(-1), y[lo:hi].reshape(-1),
                          g.reshape(-1))
        np.matmul(cols[lo:hi], g.transpose(0, 2, 1), out=per_image[lo:hi])
        if need_input_grad:  # col2im reads what the GEMM just wrote, from cache
            # Input-gradient columns live one slice at a time, in a cache-sized buffer.
            gcols = POOL.empty("conv.gcols", (slice_images, k, oh * ow), dtype)[:hi - lo]
            np.matmul(w_t, g, out=gcols)
            _col2im(gcols, kh, kw, sh, sw, ph, pw, 1, 1, oh, ow, gx[lo:hi])
    run_slices(work, chunks)
    gw2 = per_image.sum(axis=0)  # (rows, out_ch)
    gw = np.ascontiguousarray(gw2[:k].T).reshape(w.shape)
    gb = gw2[k].copy() if has_bias else None
    return gx, gw, gb


ALGORITHMS = ("auto", "im2col", "winograd")


def algorithm_setting(environ=None):
    """``MINIGRAD_CONV_ALGO``: "auto" (default), "im2col" (the exact GEMM path for
    every convolution) or "winograd" (wherever it applies)."""
    environ = os.environ if environ is None else environ
    value = environ.get("MINIGRAD_CONV_ALGO", "auto").strip().lower() or "auto"
    if value not in ALGORITHMS:
        raise ValueError(f"MINIGRAD_CONV_ALGO={value!r}; use one of {ALGORITHMS}")
    return value


def algorithm(x_shape, w_shape, stride, padding=(0, 0), dtype=np.float32, activation=None,
              trial=None):
    """"winograd" or "im2col" for a convolution of these shapes (the setting is read per
    call, so the variable can change between calls). Under "auto", a geometry worth
    measuring is decided once per process by ``trial(algorithm) -> seconds`` (without
    one, and until it has run, im2col)."""
    setting = algorithm_setting()
    out_ch, c, kh, kw = w_shape
    if (kh, kw) != (3, 3) or tuple(stride) != (1, 1) or c == 0 or setting == "im2col":
        return "im2col"
    if setting == "winograd":
        return "winograd"
    n, _, h, wd = x_shape
    work = n * out_ch * c * 9 * (h + 2 * padding[0] - 2) * (wd + 2 * padding[1] - 2)
    if work < MEASURE_MIN_WORK:
        return "im2col"
    key = (tuple(x_shape), tuple(w_shape), tuple(padding), np.dtype(dtype).str, activation)
    if key not in _measured:
        if trial is None:
            return "im2col"
        _measured[key] = min(("im2col", "winograd"), key=trial)
    return _measured[key]


def measured_choices():
    """What "auto" has measured in this process: {geometry: algorithm}, a copy."""
    return dict(_measured)


def _trial_seconds(algo, x, w, b, padding, activation):
    """Best of two timed forward + backward passes of ``algo`` on the first
    MEASURE_IMAGES images of x (after one untimed pass: first calls load code)."""
    x = x[:MEASURE_IMAGES]
    best = float("inf")
    for attempt in range(3):
        start = time.perf_counter()
        if algo == "winograd":
            y, cache = winograd.conv2d_forward(x, w, b, tuple(padding), activation, x.dtype)
            winograd.conv2d_backward(y, cache, True)
        else:
            y, cache = _im2col_forward(x, w, b, (1, 1), padding, activation, x.dtype)
            _im2col_backward(y, cache, True)
        if attempt:
            best = min(best, time.perf_counter() - start)
    return best


def _chunks(n, bytes_per_image):
    """(start, stop) slices of the batch whose columns take about CHUNK_BYTES each
    (none for an empty batch)."""
    return batch_slices(n, bytes_per_image, CHUNK_BYTES)


def _slice_images(chunks):
    """Images in the largest slice (the first), which sizes the per-slice scratch
    buffers; 0 for an empty batch."""
    return chunks[0][1] if chunks else 0
