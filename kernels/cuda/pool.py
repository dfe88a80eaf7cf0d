"""Max and average pooling on the GPU (CUDA kernels in pool.cu)."""
import numpy as np

from ..reference.windows import output_size
from .compile import check_int32, cp, float_dtype, grid_2d, kernel, launch

_SOURCE = "pool.cu"


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


def _output_grad(what, gy, y_shape):
    """gy as a contiguous array of the forward output's shape (the kernels trust it)."""
    gy = cp.ascontiguousarray(gy)
    if gy.shape != y_shape:
        raise ValueError(f"{what}: gradient of shape {gy.shape} does not match the "
                         f"pooled output {y_shape}")
    return gy, float_dtype(what, gy)


def max_pool2d_forward(x, kernel_size, stride, padding):
    """Window maxima; padding counts as -inf, as in PyTorch. Keeps the argmax."""
    x = cp.ascontiguousarray(x)
    dtype = float_dtype("max_pool2d_forward", x)
    y_shape, sizes = _geometry("max_pool2d_forward", x.shape, kernel_size, stride, padding)
    y = cp.empty(y_shape, dtype=dtype)
    argmax = cp.empty(y_shape, dtype=np.int32)  # flat index in the input plane
    launch(kernel(_SOURCE, "max_pool_forward", dtype),
           grid_2d(y_shape[2] * y_shape[3], y_shape[0] * y_shape[1]),
           (x, y, argmax) + sizes)
    return y, (argmax, x.shape, sizes)


def max_pool2d_backward(gy, cache):
    """Each input element gathers the output gradients of the windows it won."""
    argmax, x_shape, sizes = cache
    gy, dtype = _output_grad("max_pool2d_backward", gy, argmax.shape)
    gx = cp.empty(x_shape, dtype=dtype)
    launch(kernel(_SOURCE, "max_pool_backward", dtype),
           grid_2d(x_shape[2] * x_shape[3], x_shape[0] * x_shape[1]),
           (gy, argmax, gx) + sizes)
    return gx


def avg_pool2d_forward(x, kernel_size, stride, padding):
    """Window means; zero padding counts in the divisor (count_include_pad=True)."""
    x = cp.ascontiguousarray(x)
    dtype = float_dtype("avg_pool2d_forward", x)
    y_shape, sizes = _geometry("avg_pool2d_forward", x.shape, kernel_size, stride, padding)
    y = cp.empty(y_shape, dtype=dtype)
    launch(kernel(_SOURCE, "avg_pool_forward", dtype),
           grid_2d(y_shape[2] * y_shape[3], y_shape[0] * y_shape[1]), (x, y) + sizes)
    return y, (x.shape, y_shape, sizes)


def avg_pool2d_backward(gy, cache):
    """Each input element gathers an equal share of every window that covers it."""
    x_shape, y_shape, sizes = cache
    gy, dtype = _output_grad("avg_pool2d_backward", gy, y_shape)
    gx = cp.empty(x_shape, dtype=dtype)
    launch(kernel(_SOURCE, "avg_pool_backward", dtype),
           grid_2d(x_shape[2] * x_shape[3], x_shape[0] * x_shape[1]), (gy, gx) + sizes)
    return gx
