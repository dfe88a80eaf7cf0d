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
