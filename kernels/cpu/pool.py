"""Max and average pooling on the CPU (Numba), NCHW.

Each kernel loops over (image, channel) planes, so parallel tasks never write the
same element. Max pooling keeps, per output, the index of the maximum inside its
window (row-major over the window, padding included, as the reference's argmax), so
a gradient of another dtype (float16) can go to the reference backward;
the common 2x2 / stride 2 / no padding case has its own kernels that keep that
index as one byte and whose backward writes every input element once (no separate
zeroing pass).
"""
from typing import NamedTuple, Optional

import numpy as np
from numba import prange

from ..reference import pool as reference
from ..reference.windows import output_size

from .._fallback import backward_falls_back, falls_back_to
from ._buffers import POOL
from ._jit import cpu_kernel


@cpu_kernel
def _max_pool_2x2(x, y, index):
    """y = max over each 2x2 block, index = its position 0..3 (row-major) in the block."""
    n_img, n_ch, oh, ow = y.shape
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        for oy in range(oh):
            for ox in range(ow):
                best = x[b, c, 2 * oy, 2 * ox]
                arg = 0
                for k in range(1, 4):
                    v = x[b, c, 2 * oy + k // 2, 2 * ox + k % 2]
                    # Strictly greater keeps the first maximum; a NaN wins and stays,
                    # as NumPy's argmax (and PyTorch's max pooling) propagate it.
                    if v > best or (v != v and best == best):
                        best = v
                        arg = k
                y[b, c, oy, ox] = best
                index[b, c, oy, ox] = arg


@cpu_kernel
def _max_pool_2x2_backward(gy, index, gx):
    """gx = gy routed to each block's maximum, zero elsewhere (every element written)."""
    n_img, n_ch = gx.shape[0], gx.shape[1]
    oh, ow = gy.shape[2], gy.shape[3]
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        for oy in range(oh):
            for ox in range(ow):
                g = gy[b, c, oy, ox]
                arg = index[b, c, oy, ox]
                for k in range(4):
                    gx[b, c, 2 * oy + k // 2, 2 * ox + k % 2] = g if k == arg else 0
        # An odd trailing row or column belongs to no window.
        gx[b, c, 2 * oh:] = 0
        gx[b, c, :2 * oh, 2 * ow:] = 0


@cpu_kernel
def _max_pool(x, kh, kw, sh, sw, ph, pw, y, index):
    """General max pooling; padding reads as -inf. index = k = i*kw + j of the max.

    The first in-bounds element starts the search, so padding never wins a tie with
    -inf (PyTorch's rule, and the reference's); only a window with no element inside
    the input gives -inf with index 0, a padding position.
    """
    n_img, n_ch, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        for oy in range(oh):
            for ox in range(ow):
                best = -np.inf
                arg = 0
                found = False
                for i in range(kh):
                    iy = oy * sh + i - ph
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw + j - pw
                        if ix < 0 or ix >= w:
                            continue
                        v = x[b, c, iy, ix]
                        if not found or v > best or (v != v and best == best):
                            best = v
                            arg = i * kw + j
                            found = True
                y[b, c, oy, ox] = best
                index[b, c, oy, ox] = arg


@cpu_kernel
def _max_pool_backward(gy, index, kw, sh, sw, ph, pw, gx):
    """Add each output gradient to the input element that held the window's maximum."""
    n_img, n_ch, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        gx[b, c] = 0
        for oy in range(oh):
            for ox in range(ow):
                k = index[b, c, oy, ox]
                iy = oy * sh + k // kw - ph
                ix = ox * sw + k % kw - pw
                # A window whose maximum is its padding (every element -inf) has no
                # input element to send the gradient to, as in the reference.
                if iy >= 0 and iy < h and ix >= 0 and ix < w:
                    gx[b, c, iy, ix] += gy[b, c, oy, ox]


@cpu_kernel
def _avg_pool(x, kh, kw, sh, sw, ph, pw, y):
    """Window sums over the zero-padded input divided by kh*kw (count_include_pad)."""
    n_img, n_ch, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    scale = 1.0 / (kh * kw)
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        for oy in range(oh):
            for ox in range(ow):
                total = 0.0
                for i in range(kh):
                    iy = oy * sh + i - ph
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw + j - pw
                        if ix >= 0 and ix < w:
                            total += x[b, c, iy, ix]
                y[b, c, oy, ox] = total * scale


@cpu_kernel
def _avg_pool_backward(gy, kh, kw, sh, sw, ph, pw, gx):
    """Spread each output gradient evenly over the in-bounds part of its window."""
    n_img, n_ch, h, w = gx.shape
    oh, ow = gy.shape[2], gy.shape[3]
    scale = 1.0 / (kh * kw)
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        gx[b, c] = 0
        for oy in range(oh):
            for ox in range(ow):
                share = gy[b, c, oy, ox] * scale
                for i in range(kh):
                    iy = oy * sh + i - ph
                    if iy < 0 or iy >= h:
                        continue
                    for j in range(kw):
                        ix = ox * sw + j - pw
                        if ix >= 0 and ix < w:
                            gx[b, c, iy, ix] += share


class PoolCache(NamedTuple):
    """The argmax (max pooling only) and the geometry, for backward."""
    index: Optional[np.ndarray]
    x_shape: tuple
    kernel: tuple
    stride: tuple
    padding: tuple


def _geometry(x, kernel, stride, padding):
    kernel, stride, padding = tuple(kernel), tuple(stride), tuple(padding)
    n, c, h, w = x.shape
    out_shape = (n, c, output_size(h, kernel[0], stride[0], padding[0]),
                 output_size(w, kernel[1], stride[1], padding[1]))
    return kernel, stride, padding, out_shape


def _gradient(gy, cache):
    """gy as a C-contiguous array and a pooled gx of its dtype (float32/float64)."""
    gy = np.ascontiguousarray(gy)
    return gy, POOL.empty("pool.gx", cache.x_shape, gy.dtype)


def _reference_cache(cache):
    """The reference kernel's cache for the same forward: its argmax is ours (the
    row-major position in the window, padding never winning a tie)."""
    geometry = (cache.x_shape, cache.kernel, cache.stride, cache.padding)
    return geometry if cache.index is None else (cache.index,) + geometry


# Integer images keep their dtype: the reference pools them.
@falls_back_to(reference.max_pool2d_forward, arrays=("x",))
def max_pool2d_forward(x, kernel, stride, padding):
    """Window maxima (padding counts as -inf) and the argmax kept for backward."""
    x = np.ascontiguousarray(x)
    kernel, stride, padding, out_shape = _geometry(x, kernel, stride, padding)
    y = POOL.empty("pool.y", out_shape, x.dtype)
    if kernel == (2, 2) and stride == (2, 2) and padding == (0, 0):
        index = POOL.empty("pool.index", out_shape, np.uint8)
        _max_pool_2x2(x, y, index)
    else:
        index = POOL.empty("pool.index", out_shape, np.int32)
        _max_pool(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1],
                  y, index)
    return y, PoolCache(index, x.shape, kernel, stride, padding)


# A float16 or integer gradient keeps the reference's dtype: the reference takes it.
@backward_falls_back(reference.max_pool2d_backward, cache_type=PoolCache, arrays=("gy",),
                     reference_cache=_reference_cache)
def max_pool2d_backward(gy, cache):
    """Route each output gradient to the input element that held the maximum."""
    gy, gx = _gradient(gy, cache)
    (_, kw), (sh, sw), (ph, pw) = cache.kernel, cache.stride, cache.padding
    if cache.index.dtype == np.uint8:
        _max_pool_2x2_backward(gy, cache.index, gx)
    else:
        _max_pool_backward(gy, cache.index, kw, sh, sw, ph, pw, gx)
    return gx


@falls_back_to(reference.avg_pool2d_forward, arrays=("x",))
def avg_pool2d_forward(x, kernel, stride, padding):
    """Window means; zero padding counts in the divisor (count_include_pad=True)."""
    x = np.ascontiguousarray(x)
    kernel, stride, padding, out_shape = _geometry(x, kernel, stride, padding)
    y = POOL.empty("pool.y", out_shape, x.dtype)
    _avg_pool(x, kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1], y)
    return y, PoolCache(None, x.shape, kernel, stride, padding)


@backward_falls_back(reference.avg_pool2d_backward, cache_type=PoolCache, arrays=("gy",),
                     reference_cache=_reference_cache)
def avg_pool2d_backward(gy, cache):
    """Spread each output gradient evenly over its window."""
    gy, gx = _gradient(gy, cache)
    (kh, kw), (sh, sw), (ph, pw) = cache.kernel, cache.stride, cache.padding
    _avg_pool_backward(gy, kh, kw, sh, sw, ph, pw, gx)
    return gx
