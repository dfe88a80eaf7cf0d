"""Pooling: ``max_pool2d``/``avg_pool2d`` (and 1-D), ``max_unpool2d``, adaptive pooling.

The common case (no ceil mode, no dilation, count_include_pad, no indices) runs the
device's fixed-window kernels; every other option gathers windows through a grid of
flat input indices (``kernels.reference.windows``), the same kernels for all of them.
"""
import numpy as np

from .. import backend
from .._kernels import kernel_module
from ..tensor import Tensor
from ..utils import is_int, pair
from ._core import _record
from .conv import _check_nchw, _single
from .resize import adaptive_mean
from .shape import reshape

_windows = kernel_module("reference.windows")
adaptive_positions, avg_divisors = _windows.adaptive_positions, _windows.avg_divisors
plane_windows, sliding_positions = _windows.plane_windows, _windows.sliding_positions


def _window_args(op, kernel_size, stride, padding, dilation=1):
    kernel = pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == [] or stride == () else \
        pair(stride, "stride", op, 1)
    padding = pair(padding, "padding", op, 0)
    dilation = pair(dilation, "dilation", op, 1)
    for p, k, d in zip(padding, kernel, dilation):
        if p > (d * (k - 1) + 1) // 2:
            raise ValueError(f"{op}: padding {padding} must be at most half the kernel "
                             f"size {kernel}")
    return kernel, stride, padding, dilation


def _fixed_window_pool(kind, x, kernel, stride, padding):
    forward, backward = backend.kernels(f"{kind}_pool2d_forward",
                                        f"{kind}_pool2d_backward", device=x.device)
    y, cache = forward(x.data, kernel, stride, padding)

    def pool2d_backward(g):
        return (backward(g, cache),)
    return _record(y, (x,), pool2d_backward, f"{kind}_pool2d")


def _windows(op, x, kernel, stride, padding, dilation, ceil_mode):
    """The (OH, OW, kh*kw) flat-index window grid of a sliding pool, or a clear error."""
    rows = sliding_positions(x.shape[2], kernel[0], stride[0], padding[0], dilation[0],
                             ceil_mode)
    cols = sliding_positions(x.shape[3], kernel[1], stride[1], padding[1], dilation[1],
                             ceil_mode)
    if rows.shape[0] < 1 or cols.shape[0] < 1:
        raise ValueError(f"{op}: input of spatial size {x.shape[2:]} is smaller than the "
                         f"window {kernel} (dilation {dilation}, padding {padding})")
    return plane_windows(rows, cols, x.shape[3])


def _window_max(x, windows, return_indices):
    forward, backward = backend.kernels("window_max_forward", "window_max_backward",
                                        device=x.device)
    y, index = forward(x.data, windows)

    def max_pool2d_backward(g):
        return (backward(g, index, x.shape),)
    out = _record(y, (x,), max_pool2d_backward, "max_pool2d")
    return (out, Tensor(index)) if return_indices else out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Window maxima over NCHW ``x`` (torch.nn.functional.max_pool2d); stride defaults
    to the kernel size, padding counts as -inf. ``return_indices`` also returns each
    maximum's flat index within its (H, W) plane, for ``max_unpool2d``."""
    _check_nchw(x, "max_pool2d")
    kernel, stride, padding, dilation = _window_args("max_pool2d", kernel_size, stride,
                                                     padding, dilation)
    if dilation == (1, 1) and not ceil_mode and not return_indices:
        _check_fits("max_pool2d", x, kernel, padding)
        return _fixed_window_pool("max", x, kernel, stride, padding)
    windows = _windows("max_pool2d", x, kernel, stride, padding, dilation, ceil_mode)
    return _window_max(x, windows, return_indices)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Window means over NCHW ``x`` (torch.nn.functional.avg_pool2d). The divisor is the
    window's size within the zero-padded input (``count_include_pad``) or within the
    input itself, or ``divisor_override``."""
    _check_nchw(x, "avg_pool2d")
    kernel, stride, padding, _ = _window_args("avg_pool2d", kernel_size, stride, padding)
    if divisor_override is not None and (not is_int(divisor_override) or divisor_override < 1):
        raise ValueError(f"avg_pool2d: divisor_override must be a positive int, got "
                         f"{divisor_override!r}")
    if not ceil_mode and count_include_pad and divisor_override is None:
        _check_fits("avg_pool2d", x, kernel, padding)
        return _fixed_window_pool("avg", x, kernel, stride, padding)
    windows = _windows("avg_pool2d", x, kernel, stride, padding, (1, 1), ceil_mode)
    if divisor_override is not None:
        divisor = np.full(windows.shape[:2], divisor_override)
    else:
        divisor = np.outer(*(avg_divisors(x.shape[2 + a], kernel[a], stride[a], padding[a],
                                          ceil_mode, count_include_pad) for a in range(2)))
    return _window_avg(x, windows, divisor, "avg_pool2d")


def _window_avg(x, windows, divisor, name):
    forward, backward = backend.kernels("window_avg_forward", "window_avg_backward",
                                        device=x.device)
    y, cache = forward(x.data, windows, divisor)

    def avg_pool2d_backward(g):
        return (backward(g, cache),)
    return _record(y, (x,), avg_pool2d_backward, name)


def _check_fits(op, x, kernel, padding):
    if x.shape[2] + 2 * padding[0] < kernel[0] or x.shape[3] + 2 * padding[1] < kernel[1]:
        raise ValueError(f"{op}: input of spatial size {x.shape[2:]} is smaller "
                         f"than the window {kernel}")


# ------------------------------------------------------------------------ 1-D pooling

def _as_planes(op, x):
    if x.ndim != 3:
        raise ValueError(f"{op}: expected a 3-D input (N, C, L), got shape {x.shape}")
    return reshape(x, (x.shape[0], x.shape[1], 1, x.shape[2]))


def _as_sequences(y):
    return reshape(y, (y.shape[0], y.shape[1], y.shape[3]))


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Window maxima over (N, C, L) ``x`` (torch.nn.functional.max_pool1d)."""
    op = "max_pool1d"
    stride = None if stride is None else (1, _single(stride, "stride", op, 1))
    out = max_pool2d(_as_planes(op, x), (1, _single(kernel_size, "kernel_size", op, 1)),
                     stride, (0, _single(padding, "padding", op, 0)),
                     (1, _single(dilation, "dilation", op, 1)), ceil_mode, return_indices)
    if return_indices:
        return _as_sequences(out[0]), Tensor(out[1].data[:, :, 0])
    return _as_sequences(out)


def avg_pool1d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Window means over (N, C, L) ``x`` (torch.nn.functional.avg_pool1d)."""
    op = "avg_pool1d"
    stride = None if stride is None else (1, _single(stride, "stride", op, 1))
    return _as_sequences(avg_pool2d(_as_planes(op, x),
                                    (1, _single(kernel_size, "kernel_size", op, 1)), stride,
                                    (0, _single(padding, "padding", op, 0)), ceil_mode,
                                    count_include_pad))


# ------------------------------------------------------------------------ unpooling

def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """The partial inverse of ``max_pool2d(..., return_indices=True)``
    (torch.nn.functional.max_unpool2d): each value of ``x`` goes to its flat index in a
    zero (H, W) plane. The size defaults to (in - 1) * stride - 2 * padding + kernel
    per axis; ``output_size`` ((H, W), or with N and C in front) picks another."""
    op = "max_unpool2d"
    _check_nchw(x, op)
    indices = indices if isinstance(indices, Tensor) else Tensor(np.asarray(indices))
    if tuple(indices.shape) != tuple(x.shape):
        raise ValueError(f"{op}: indices of shape {indices.shape} must have the input's "
                         f"shape {x.shape}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got dtype {indices.dtype}")
    kernel, stride, padding, _ = _window_args(op, kernel_size, stride, padding)
    size = tuple((x.shape[2 + a] - 1) * stride[a] - 2 * padding[a] + kernel[a]
                 for a in range(2))
    if output_size is not None:
        wanted = tuple(output_size)[-2:]
        if len(tuple(output_size)) not in (2, 4) or not all(is_int(v) for v in wanted):
            raise ValueError(f"{op}: output_size must be (H, W) or (N, C, H, W), got "
                             f"{output_size!r}")
        for a in range(2):
            if not size[a] - stride[a] < wanted[a] < size[a] + stride[a]:
                raise ValueError(f"{op}: output_size {wanted} must be within one stride "
                                 f"{stride} of the default size {size}")
        size = tuple(int(v) for v in wanted)
    xp = backend.array_module(x.data)
    n, c, h, w = x.shape
    plane = size[0] * size[1]
    flat_index = indices.data.reshape(n, c, h * w).astype(xp.int64)
    if not backend.is_capturing() and flat_index.size and \
            not 0 <= int(flat_index.min()) <= int(flat_index.max()) < plane:
        raise IndexError(f"{op}: indices must lie in [0, {plane}) for an output of size "
                         f"{size}, got values in [{int(flat_index.min())}, "
                         f"{int(flat_index.max())}]")
    y = xp.zeros((n, c, plane), dtype=x.dtype)
    xp.put_along_axis(y, flat_index, x.data.reshape(n, c, h * w), axis=2)

    def max_unpool2d_backward(g):
        return (xp.take_along_axis(g.reshape(n, c, plane), flat_index, axis=2)
                .reshape(x.shape),)
    return _record(y.reshape(n, c, *size), (x,), max_unpool2d_backward)


# ------------------------------------------------------------------------ adaptive

def _adaptive_size(op, x, output_size):
    """(OH, OW) from an int, or a pair whose None entries keep the input's size."""
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else \
        (output_size, output_size)
    if len(sizes) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    sizes = tuple(x.shape[2 + a] if s is None else s for a, s in enumerate(sizes))
    if not all(is_int(s) and s >= 1 for s in sizes):
        raise ValueError(f"{op}: output_size must hold positive ints (or None), got "
                         f"{output_size!r}")
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{op}: input of shape {x.shape} has an empty plane")
    return sizes


def adaptive_avg_pool2d(x, output_size):
    """Means over torch's adaptive windows: output cell i covers input
    [floor(i*H/OH), ceil((i+1)*H/OH)) along each axis. Separable: one weighted
    gather per axis."""
    _check_nchw(x, "adaptive_avg_pool2d")
    sizes = _adaptive_size("adaptive_avg_pool2d", x, output_size)
    for axis, out in zip((2, 3), sizes):
        x = adaptive_mean(x, axis, out)
    return x


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Maxima over torch's adaptive windows (see ``adaptive_avg_pool2d``);
    ``return_indices`` as in ``max_pool2d``."""
    _check_nchw(x, "adaptive_max_pool2d")
    sizes = _adaptive_size("adaptive_max_pool2d", x, output_size)
    windows = plane_windows(adaptive_positions(x.shape[2], sizes[0]),
                            adaptive_positions(x.shape[3], sizes[1]), x.shape[3])
    return _window_max(x, windows, return_indices)
