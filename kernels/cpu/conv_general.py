"""Convolutions with groups and dilation, and transposed convolutions, on the CPU:
Numba im2col/col2im with dilation around the grouped GEMMs of the reference.

The columns have the layout of ``conv.py``'s (per image, (C*kh*kw, OH*OW), no bias
row), so the channels of one group are consecutive rows and the grouped products
(``reference.conv.grouped_*``) are one batched ``np.matmul`` over (image, group)
views, no copies; a depthwise convolution (groups == in_channels) has direct loops
of its own instead. The plain convolution (groups 1, dilation 1) stays in ``conv.py``.
"""
from typing import NamedTuple

import numpy as np
from numba import prange

from ..reference import conv as reference
from ..reference.conv import (grouped_forward, grouped_input_columns,
                                    grouped_weight_grad)
from ..reference.windows import output_size

from .._fallback import backward_falls_back, falls_back_to
from .._xp import fast_dtype
from ._buffers import POOL
from .conv import _col2im, _im2col
from ._jit import cpu_kernel, serial_kernel


def im2col(x, kernel, stride, padding, dilation, out_hw, tag="conv_general.cols"):
    """(N, C*kh*kw, OH*OW) columns of a C-contiguous float array (from the buffer pool)."""
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_hw
    cols = POOL.empty(tag, (n, c * kh * kw, oh * ow), x.dtype)
    _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols)
    return cols


def col2im(gcols, x_shape, kernel, stride, padding, dilation, out_hw):
    """The adjoint of ``im2col``: (N, C*kh*kw, OH*OW) -> (N, C, H, W)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = kernel, stride, padding, dilation, out_hw
    gx = POOL.empty("conv_general.gx", x_shape, gcols.dtype)
    _col2im(np.ascontiguousarray(gcols), kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, gx)
    return gx


class GeneralCache(NamedTuple):
    """What a fast general (or transposed) convolution's backward reads."""
    cols: np.ndarray  # the convolution's input columns (None for a transposed one)
    x: np.ndarray  # the transposed convolution's input (None for a convolution)
    x_shape: tuple
    w: np.ndarray
    has_bias: bool
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int


class DepthwiseCache(NamedTuple):
    """A depthwise convolution's input, weight and geometry (sh, sw, ph, pw, dh, dw)."""
    x: np.ndarray
    w: np.ndarray
    has_bias: bool
    geometry: tuple


def _depthwise_backward(gy, cache, need_input_grad):
    x, w, has_bias, geometry = cache
    gy = np.ascontiguousarray(gy, dtype=w.dtype)
    gw = np.empty(w.shape, w.dtype)
    _depthwise_weight_grad(gy, x, *geometry, gw)
    gb = gy.sum(axis=(0, 2, 3)) if has_bias else None
    gx = None
    if need_input_grad:
        gx = np.empty(x.shape, w.dtype)
        _depthwise_input_grad(gy, w, *geometry, gx)
    return gx, gw, gb


def _floats(*arrays):
    """The arrays as C-contiguous arrays of their common dtype (float32 or float64:
    ``falls_back_to`` sent the others to the reference)."""
    dtype = fast_dtype(*arrays)
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _pooled(tag, shape, like):
    """A reused array of ``shape`` in ``like``'s dtype: a GEMM writing into fresh
    memory of tens of MB pays its page faults whenever the allocator hands back new
    pages (``gemm-fresh-output`` in benchmarks/README.md, "Design measurements")."""
    return POOL.empty(tag, shape, like.dtype)


def _biased(y, b):
    """y + b per channel, in place (y keeps its dtype; the bias is cast to it)."""
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


@falls_back_to(reference.conv2d_general_forward, arrays=("x", "w"))
def conv2d_general_forward(x, w, b, stride, padding, dilation, groups):
    """conv2d with dilation and groups; the contract of the reference's."""
    x, w = _floats(x, w)
    n, c, h, wd = x.shape
    out_ch, _, kh, kw = w.shape
    oh = output_size(h, kh, stride[0], padding[0], dilation[0])
    ow = output_size(wd, kw, stride[1], padding[1], dilation[1])
    geometry = (*stride, *padding, *dilation)
    if groups == c:
        y = np.empty((n, out_ch, oh, ow), x.dtype)
        _depthwise_forward(x, w, *geometry, y)
        return _biased(y, b), DepthwiseCache(x, w, b is not None, geometry)
    cols = im2col(x, (kh, kw), stride, padding, dilation, (oh, ow))
    y = grouped_forward(cols, w, groups, _pooled("conv_general.y", (n, out_ch, oh * ow), x))
    y = y.reshape(n, out_ch, oh, ow)
    return _biased(y, b), GeneralCache(cols, None, x.shape, w, b is not None, tuple(stride),
                                       tuple(padding), tuple(dilation), groups)


@backward_falls_back(reference.conv2d_general_backward,
                     cache_type=(GeneralCache, DepthwiseCache))
def conv2d_general_backward(gy, cache, need_input_grad=True):
    """(gx or None, gw, gb or None) of ``conv2d_general_forward``."""
    if isinstance(cache, DepthwiseCache):
        return _depthwise_backward(gy, cache, need_input_grad)
    cols, _, x_shape, w, has_bias, stride, padding, dilation, groups = cache
    n, out_ch, oh, ow = gy.shape
    gy2 = np.ascontiguousarray(gy, dtype=w.dtype).reshape(n, out_ch, oh * ow)
    gw = grouped_weight_grad(gy2, cols, w.shape, groups)
    gb = gy2.sum(axis=(0, 2)) if has_bias else None
    gx = None
    if need_input_grad:
        gcols = grouped_input_columns(gy2, w, groups,
                                      _pooled("conv_general.gcols", cols.shape, w))
        gx = col2im(gcols, x_shape, w.shape[2:], stride, padding, dilation, (oh, ow))
    return gx, gw, gb


@falls_back_to(reference.conv_transpose2d_forward, arrays=("x", "w"))
def conv_transpose2d_forward(x, w, b, stride, padding, dilation, groups, out_hw):
    """Transposed convolution; the contract of the reference's."""
    x, w = _floats(x, w)
    n, c, h, wd = x.shape
    out_shape = (n, w.shape[1] * groups) + tuple(out_hw)
    gcols = grouped_input_columns(x.reshape(n, c, h * wd), w, groups, _pooled(
        "conv_general.gcols", (n, w.shape[1] * groups * w.shape[2] * w.shape[3], h * wd), x))
    y = col2im(gcols, out_shape, w.shape[2:], stride, padding, dilation, (h, wd))
    return _biased(y, b), GeneralCache(None, x, out_shape, w, b is not None, tuple(stride),
                                       tuple(padding), tuple(dilation), groups)


@backward_falls_back(reference.conv_transpose2d_backward, cache_type=GeneralCache)
def conv_transpose2d_backward(gy, cache, need_input_grad=True):
    """(gx or None, gw, gb or None) of ``conv_transpose2d_forward``."""
    _, x, _, w, has_bias, stride, padding, dilation, groups = cache
    n, c, h, wd = x.shape
    gy = np.ascontiguousarray(gy, dtype=w.dtype)
    cols = im2col(gy, w.shape[2:], stride, padding, dilation, (h, wd))
    gw = grouped_weight_grad(x.reshape(n, c, h * wd), cols, w.shape, groups)
    gb = gy.sum(axis=(0, 2, 3)) if has_bias else None
    gx = None
    if need_input_grad:
        gx = grouped_forward(cols, w, groups, _pooled("conv_general.y", (n, c, h * wd), x))
        gx = gx.reshape(x.shape)
    return gx, gw, gb


# ------------------------------------------------------------------ depthwise, direct
# groups == in_channels (one input channel per group, out = multiplier * in): each
# output is a kh*kw dot product, far too small for a GEMM (the batched GEMM route ran
# N*C matrix products of one row each), so these loops compute it directly.

@serial_kernel
def _inside(k, dilation, pad, stride, size, out):
    """[lo, hi): the outputs whose tap k reads inside an axis of ``size``
    (0 <= o*stride + k*dilation - pad < size), so the inner loops need no test."""
    lo = max(0, -((k * dilation - pad) // stride))
    hi = min(out, (size - 1 + pad - k * dilation) // stride + 1)
    return lo, max(lo, hi)


@serial_kernel
def _depthwise_plane(image, taps, sh, sw, ph, pw, dh, dw, out, adjoint):
    """out += one filter ``taps`` (kh, kw) slid over one input plane ``image``, or with
    ``adjoint``, image += its adjoint applied to ``out``: one tap at a time over the
    rows' valid ranges (long inner loops with no bounds test, which LLVM vectorises)."""
    h, wd = image.shape
    oh, ow = out.shape
    kh, kw = taps.shape
    for i in range(kh):
        oy_lo, oy_hi = _inside(i, dh, ph, sh, h, oh)
        for j in range(kw):
            ox_lo, ox_hi = _inside(j, dw, pw, sw, wd, ow)
            tap = taps[i, j]
            for oy in range(oy_lo, oy_hi):
                iy = oy * sh + i * dh - ph
                if adjoint:
                    for ox in range(ox_lo, ox_hi):
                        image[iy, ox * sw + j * dw - pw] += tap * out[oy, ox]
                else:
                    for ox in range(ox_lo, ox_hi):
                        out[oy, ox] += tap * image[iy, ox * sw + j * dw - pw]


@cpu_kernel
def _depthwise_forward(x, w, sh, sw, ph, pw, dh, dw, y):
    """y[n, o] = sum_ij w[o, 0, i, j] * xpad[n, o // m, oy*sh + i*dh, ox*sw + j*dw]
    (m = out_channels / in_channels); each task owns one output plane."""
    n_img, n_ch = x.shape[0], x.shape[1]
    out_ch = w.shape[0]
    mult = out_ch // n_ch
    for task in prange(n_img * out_ch):
        b = task // out_ch
        o = task % out_ch
        y[b, o] = 0
        _depthwise_plane(x[b, o // mult], w[o, 0], sh, sw, ph, pw, dh, dw, y[b, o], False)


@cpu_kernel
def _depthwise_input_grad(gy, w, sh, sw, ph, pw, dh, dw, gx):
    """gx[n, c] = the adjoint of _depthwise_forward; each task owns one input plane."""
    n_img, n_ch = gx.shape[0], gx.shape[1]
    mult = w.shape[0] // n_ch
    for task in prange(n_img * n_ch):
        b = task // n_ch
        c = task % n_ch
        gx[b, c] = 0
        for o in range(c * mult, (c + 1) * mult):
            _depthwise_plane(gx[b, c], w[o, 0], sh, sw, ph, pw, dh, dw, gy[b, o], True)


@cpu_kernel
def _depthwise_weight_grad(gy, x, sh, sw, ph, pw, dh, dw, gw):
    """gw[o, 0, i, j] = sum over images and outputs of gy * the input it multiplied;
    each task owns one output channel's filter."""
    n_img, n_ch, h, wd = x.shape
    out_ch, _, kh, kw = gw.shape
    oh, ow = gy.shape[2], gy.shape[3]
    mult = out_ch // n_ch
    for o in prange(out_ch):
        c = o // mult
        for i in range(kh):
            oy_lo, oy_hi = _inside(i, dh, ph, sh, h, oh)
            for j in range(kw):
                ox_lo, ox_hi = _inside(j, dw, pw, sw, wd, ow)
                acc = 0.0
                for b in range(n_img):
                    for oy in range(oy_lo, oy_hi):
                        iy = oy * sh + i * dh - ph
                        for ox in range(ox_lo, ox_hi):
                            acc += gy[b, o, oy, ox] * x[b, c, iy, ox * sw + j * dw - pw]
                gw[o, 0, i, j] = acc
