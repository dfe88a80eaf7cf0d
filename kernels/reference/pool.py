"""Max and average pooling over NCHW windows."""
from .._xp import array_module
from .windows import col2im, im2col


def lowest_value(xp, dtype):
    """The value max pooling pads with: no element of ``dtype`` is below it (-inf for
    floats, the smallest integer for integers, False for booleans)."""
    if dtype.kind in "iu":
        return xp.iinfo(dtype).min
    if dtype.kind == "b":
        return False
    return -xp.inf


def max_pool2d_forward(x, kernel, stride, padding):
    """Window maxima; padding counts as -inf, as in PyTorch. Keeps the argmax.

    The argmax is the first maximum in row-major window order (the first NaN, if
    any), except that padding never wins a tie: a window whose in-bounds elements all
    equal the padding value (all -inf, say) takes its first in-bounds element, as
    PyTorch's max pooling does, so that element gets the gradient.
    """
    xp = array_module(x)
    pad_value = lowest_value(xp, x.dtype)
    cols = im2col(x, kernel, stride, padding, pad_value=pad_value)
    n, c, kh, kw, oh, ow = cols.shape
    flat = cols.reshape(n, c, kh * kw, oh, ow)
    index = flat.argmax(axis=2)
    y = xp.take_along_axis(flat, index[:, :, None], axis=2)[:, :, 0]
    if padding[0] or padding[1]:
        inside = im2col(xp.ones((1, 1) + x.shape[2:], dtype=bool), kernel, stride,
                        padding, pad_value=False)
        first_inside = inside.reshape(1, 1, kh * kw, oh, ow).argmax(axis=2)
        index = xp.where(y == pad_value, first_inside, index)
    return y, (index, x.shape, kernel, stride, padding)


def max_pool2d_backward(gy, cache):
    """Route each output gradient to the input position that held the maximum."""
    xp = array_module(gy)
    index, x_shape, (kh, kw), stride, padding = cache
    n, c, oh, ow = gy.shape
    gcols = xp.zeros((n, c, kh * kw, oh, ow), dtype=gy.dtype)
    xp.put_along_axis(gcols, index[:, :, None], gy[:, :, None], axis=2)
    return col2im(gcols.reshape(n, c, kh, kw, oh, ow), x_shape, stride, padding)


def avg_pool2d_forward(x, kernel, stride, padding):
    """Window means; zero padding counts in the divisor (count_include_pad=True)."""
    cols = im2col(x, kernel, stride, padding)
    y = cols.mean(axis=(2, 3))
    return y, (x.shape, kernel, stride, padding)


def avg_pool2d_backward(gy, cache):
    """Spread each output gradient evenly over its window."""
    xp = array_module(gy)
    x_shape, (kh, kw), stride, padding = cache
    n, c, oh, ow = gy.shape
    share = (gy / (kh * kw))[:, :, None, None]
    gcols = xp.broadcast_to(share, (n, c, kh, kw, oh, ow))
    return col2im(gcols, x_shape, stride, padding)


# ------------------------------------------------------------ pooling over index windows
# The pooling ops the fixed-window kernels above do not cover (ceil mode, dilation,
# count_include_pad=False, divisor_override, flat indices, adaptive windows) gather
# each output's window through a (OH, OW, K) grid of flat per-plane input indices, -1
# for a window element outside the input (see windows.sliding_positions), and send
# gradients back with one bincount.

def _gather_windows(x, windows, fill):
    """(N, C, OH, OW, K) window values (``fill`` outside the input), the safe indices and
    the mask of elements inside."""
    xp = array_module(x)
    n, c, h, w = x.shape
    windows = xp.asarray(windows)
    inside = windows >= 0
    safe = xp.where(inside, windows, 0)
    values = x.reshape(n, c, h * w)[:, :, safe]
    return xp.where(inside, values, fill), safe, inside


def _scatter_planes(values, index, x_shape, dtype):
    """gx (x_shape) with each ``values[n, c, ...]`` added at flat plane index ``index``
    (of the values' shape, or of their trailing axes)."""
    xp = array_module(values)
    n, c, h, w = x_shape
    planes = xp.arange(n * c).reshape(n, c, *([1] * (values.ndim - 2))) * (h * w)
    flat = xp.bincount(xp.broadcast_to(planes + index, values.shape).reshape(-1),
                       weights=values.reshape(-1),
                       minlength=n * c * h * w)
    return flat.astype(dtype, copy=False).reshape(x_shape)


def window_max_forward(x, windows):
    """Window maxima and their flat per-plane indices (N, C, OH, OW), int64 (torch's
    return_indices). The first maximum (NaN first) wins; an element outside the input
    never does, as in max_pool2d_forward."""
    xp = array_module(x)
    lowest = lowest_value(xp, x.dtype)
    values, safe, inside = _gather_windows(x, windows, lowest)
    k = values.argmax(axis=-1)
    y = xp.take_along_axis(values, k[..., None], axis=-1)[..., 0]
    first_inside = inside.argmax(axis=-1)  # (OH, OW)
    k = xp.where(y == lowest, first_inside, k)
    index = xp.take_along_axis(xp.broadcast_to(safe, k.shape + safe.shape[-1:]),
                               k[..., None], axis=-1)[..., 0]
    return y, index.astype(xp.int64)


def window_max_backward(gy, index, x_shape):
    """Each output gradient added to the input element at its flat index."""
    return _scatter_planes(gy, index, x_shape, gy.dtype)


def window_avg_forward(x, windows, divisor):
    """Window sums over the elements inside the input divided by ``divisor`` (OH, OW)."""
    xp = array_module(x)
    values, _, _ = _gather_windows(x, windows, 0)
    return values.sum(axis=-1) / xp.asarray(divisor).astype(x.dtype), (windows, divisor, x.shape)


def window_avg_backward(gy, cache):
    """Each output gradient / its divisor, added to every input element of its window."""
    xp = array_module(gy)
    windows, divisor, x_shape = cache
    windows = xp.asarray(windows)
    inside = windows >= 0
    share = gy / xp.asarray(divisor).astype(gy.dtype)
    values = xp.where(inside, share[..., None], 0)
    return _scatter_planes(values, xp.where(inside, windows, 0), x_shape, gy.dtype)
