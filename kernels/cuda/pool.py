"""Max and average pooling on the GPU (CUDA kernels in pool.cu).

float32 and float64 inputs run here; others (integer images, float16) go to the
reference kernel, as on the CPU (``kernels._fallback``), and their backward follows
them there: the cache says which kernel made it.
"""
from typing import NamedTuple

import numpy as np

from .._fallback import backward_falls_back, falls_back_to
from .._xp import fast_dtype
from ..reference import pool as reference
from ..reference.windows import output_size
from .compile import check_int32, cp, grid_2d, kernel, launch
_SOURCE = "pool.cu"


class MaxPoolCache(NamedTuple):
    """The winners (flat index in the input plane), the input's shape and dtype, and
    the int32 sizes the kernels take."""
    argmax: object
    x_shape: tuple
    dtype: np.dtype
    sizes: tuple


class AvgPoolCache(NamedTuple):
    """The input's and output's shapes, the input's dtype and the kernels' sizes."""
    x_shape: tuple
    y_shape: tuple
    dtype: np.dtype
    sizes: tuple


def _geometry(what, x_shape, kernel_size, stride, padding):
    """The output shape and the int32 sizes every pooling kernel takes, checked."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh, ow = output_size(h, kh, sh, ph), output_size(w, kw, sw, pw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"{what}: input {tuple(x_shape)} with padding {padding} is "
                         f"smaller than the window {kernel_size}")
    check_int32(what, planes=n * c, input_plane=h * w, output_plane=oh * ow)
    sizes = tuple(np.int32(v) for v in (n * c, h, w, kh, kw, sh, sw, ph, pw, oh, ow))
    return (n, c, oh, ow), sizes


def _output_grad(what, gy, y_shape, forward_dtype):
    """gy as a contiguous array of the forward output's shape (the kernels trust it),
    and the dtype to compute in: gy's own when the kernels take it (as on the CPU),
    else (float16, integers) the forward's, which gy is cast to."""
    if gy.shape != y_shape:
        raise ValueError(f"{what}: gradient of shape {gy.shape} does not match the "
                         f"pooled output {y_shape}")
    dtype = fast_dtype(gy)
    if dtype is None:
        dtype = forward_dtype
    return cp.ascontiguousarray(gy, dtype=dtype), dtype


# Integer images keep their dtype: the reference pools them.
@falls_back_to(reference.max_pool2d_forward, arrays=("x",))
def max_pool2d_forward(x, kernel_size, stride, padding):
    """Window maxima; padding counts as -inf, as in PyTorch. Keeps the argmax."""
    y_shape, sizes = _geometry("max_pool2d_forward", x.shape, kernel_size, stride, padding)
    x = cp.ascontiguousarray(x)
    dtype = x.dtype
    y = cp.empty(y_shape, dtype=dtype)
    argmax = cp.empty(y_shape, dtype=np.int32)  # flat index in the input plane
    launch(kernel(_SOURCE, "max_pool_forward", dtype),
           grid_2d(y_shape[2] * y_shape[3], y_shape[0] * y_shape[1]),
           (x, y, argmax) + sizes)
    return y, MaxPoolCache(argmax, x.shape, dtype, sizes)


@backward_falls_back(reference.max_pool2d_backward, cache_type=MaxPoolCache)
def max_pool2d_backward(gy, cache):
    """Each input element gathers the output gradients of the windows it won."""
    argmax, x_shape, forward_dtype, sizes = cache
    gy, dtype = _output_grad("max_pool2d_backward", gy, argmax.shape, forward_dtype)
    gx = cp.empty(x_shape, dtype=dtype)
    launch(kernel(_SOURCE, "max_pool_backward", dtype),
           grid_2d(x_shape[2] * x_shape[3], x_shape[0] * x_shape[1]),
           (gy, argmax, gx) + sizes)
    return gx


@falls_back_to(reference.avg_pool2d_forward, arrays=("x",))
def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Window means; zero padding counts in the divisor (count_include_pad=True)."""
    y_shape, sizes = _geometry("avg_pool2d_forward", x.shape, kernel_size, stride, padding)
    x = cp.ascontiguousarray(x)
    dtype = x.dtype
    y = cp.empty(y_shape, dtype=dtype)
    launch(kernel(_SOURCE, "avg_pool_forward", dtype),
           grid_2d(y_shape[2] * y_shape[3], y_shape[0] * y_shape[1]), (x, y) + sizes)
    return y, AvgPoolCache(x.shape, y_shape, dtype, sizes)


@backward_falls_back(reference.avg_pool2d_backward, cache_type=AvgPoolCache)
def avg_pool2d_backward(gy, cache):
    """Each input element gathers an equal share of every window that covers it."""
    x_shape, y_shape, forward_dtype, sizes = cache
    gy, dtype = _output_grad("avg_pool2d_backward", gy, y_shape, forward_dtype)
    gx = cp.empty(x_shape, dtype=dtype)
    launch(kernel(_SOURCE, "avg_pool_backward", dtype),
           grid_2d(x_shape[2] * x_shape[3], x_shape[0] * x_shape[1]), (gy, gx) + sizes)
    return gx
