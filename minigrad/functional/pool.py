"""Pooling: ``max_pool2d`` and ``avg_pool2d`` through the device's kernel table."""
from .. import backend
from ._core import _pair, _record
from .conv import _check_nchw


def _pool(kind, x, kernel_size, stride, padding):
    op = f"{kind}_pool2d"
    _check_nchw(x, op)
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{kind}_pool2d: padding {padding} must be at most half the "
                         f"kernel size {kernel}")
    if x.shape[2] + 2 * padding[0] < kernel[0] or x.shape[3] + 2 * padding[1] < kernel[1]:
        raise ValueError(f"{kind}_pool2d: input of spatial size {x.shape[2:]} is smaller "
                         f"than the window {kernel}")
    forward, backward = backend.kernels(x.device, f"{kind}_pool2d_forward",
                                        f"{kind}_pool2d_backward")
    y, cache = forward(x.data, kernel, stride, padding)

    def pool2d_backward(g):
        return (backward(g, cache),)
    return _record(y, (x,), pool2d_backward, f"{kind}_pool2d")


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Window maxima over NCHW ``x``; stride defaults to the kernel size."""
    return _pool("max", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Window means over NCHW ``x`` (zero padding counts, as PyTorch's default)."""
    return _pool("avg", x, kernel_size, stride, padding)
