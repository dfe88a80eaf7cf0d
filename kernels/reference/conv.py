"""2-D convolution by im2col + matrix multiply (BLAS / cuBLAS)."""
from .._xp import array_module
from .activation import activation_backward, activation_forward, check_activation
from .windows import col2im, im2col


def conv2d_forward(x, w, b, stride, padding, activation=None):
    """y[n, o] = act(sum_{c,i,j} w[o, c, i, j] * xpad[n, c, s*y + i, s*x + j] + b[o]).

    ``activation`` is None or a name in ``activation.FUSABLE``; backward then takes
    the activation's derivative from y, which the cache keeps.
    """
    check_activation(activation, "conv2d_forward")
    xp = array_module(x)
    n = x.shape[0]
    out_ch, c, kh, kw = w.shape
    cols = im2col(x, (kh, kw), stride, padding)
    oh, ow = cols.shape[-2:]
    # Sizes spelled out, not -1: an empty batch leaves nothing to infer -1 from.
    cols2 = cols.reshape(n, c * kh * kw, oh * ow)
    y = xp.matmul(w.reshape(out_ch, c * kh * kw), cols2).reshape(n, out_ch, oh, ow)
    if b is not None:  # in place: y keeps x and w's dtype, the bias is cast to it
        y += b.reshape(1, -1, 1, 1)
    if activation is not None:
        y = activation_forward(activation, y)
    return y, (cols2, x.shape, w, b is not None, stride, padding, activation, y)


def conv2d_backward(gy, cache, need_input_grad=True):
    """Gradients of conv2d_forward with respect to x, w and b."""
    xp = array_module(gy)
    cols2, x_shape, w, has_bias, stride, padding, activation, y = cache
    if activation is not None:
        gy = activation_backward(activation, gy, y)
    n, out_ch, oh, ow = gy.shape
    _, c, kh, kw = w.shape
    gy2 = gy.reshape(n, out_ch, oh * ow)
    gw = xp.tensordot(gy2, cols2, axes=([0, 2], [0, 2])).reshape(w.shape)
    gb = gy2.sum(axis=(0, 2)) if has_bias else None
    gx = None
    if need_input_grad:
        gcols = xp.matmul(w.reshape(out_ch, c * kh * kw).T, gy2)
        gcols = gcols.reshape(n, c, kh, kw, oh, ow)
        gx = col2im(gcols, x_shape, stride, padding)
    return gx, gw, gb
