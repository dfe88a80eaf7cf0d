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


# ---------------------------------------------------------------- groups and dilation
# The general convolution: ``groups`` splits the channels into independent
# convolutions (one batched GEMM over the groups), ``dilation`` spaces the kernel's
# taps apart. A transposed convolution is the input gradient of the convolution
# whose weight has the same (in, out/groups, kH, kW) array, so both share the three
# products below.

def grouped_forward(cols, w, groups, out=None):
    """y (N, O, L) = per group W_g (O/g, K) @ cols_g (K, L); cols (N, C*kh*kw, L).
    ``out``: a C-contiguous (N, O, L) array to write y into (the CPU kernels reuse one)."""
    xp = array_module(cols)
    n, rows, length = cols.shape
    out_ch = w.shape[0]
    wg = w.reshape(groups, out_ch // groups, -1)
    y = xp.matmul(wg, cols.reshape(n, groups, rows // groups, length),
                  out=None if out is None else out.reshape(n, groups, out_ch // groups, length))
    return y.reshape(n, out_ch, length)


def grouped_input_columns(gy, w, groups, out=None):
    """The columns' gradient (N, C*kh*kw, L) = per group W_g.T @ gy_g (into ``out``,
    a C-contiguous array of that shape, if given)."""
    xp = array_module(gy)
    n, out_ch, length = gy.shape
    wg = w.reshape(groups, out_ch // groups, -1)
    rows = wg.shape[2]
    # A contiguous copy of the (small) transposed weight: NumPy's stacked matmul can leave
    # a transposed operand broadcast over images to its slow non-BLAS loop
    # (``matmul-transposed`` in benchmarks/README.md, "Design measurements").
    wt = xp.ascontiguousarray(wg.transpose(0, 2, 1))
    gcols = xp.matmul(wt, gy.reshape(n, groups, out_ch // groups, length),
                      out=None if out is None else out.reshape(n, groups, rows, length))
    return gcols.reshape(n, -1, length)


def grouped_weight_grad(gy, cols, w_shape, groups):
    """gw = sum over images of gy_g (O/g, L) @ cols_g.T (L, K), in the weight's shape."""
    xp = array_module(gy)
    n, out_ch, length = gy.shape
    rows = cols.shape[1]
    gw = xp.matmul(gy.reshape(n, groups, out_ch // groups, length),
                   cols.reshape(n, groups, rows // groups, length).transpose(0, 1, 3, 2))
    return gw.sum(axis=0).reshape(w_shape)


def conv2d_general_forward(x, w, b, stride, padding, dilation, groups):
    """conv2d with ``dilation`` and ``groups`` (torch.nn.functional.conv2d's math);
    weight (O, C/groups, kh, kw)."""
    n, c = x.shape[:2]
    out_ch, _, kh, kw = w.shape
    cols = im2col(x, (kh, kw), stride, padding, dilation=dilation)
    oh, ow = cols.shape[-2:]
    cols = cols.reshape(n, c * kh * kw, oh * ow)
    y = grouped_forward(cols, w, groups).reshape(n, out_ch, oh, ow)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y, (cols, x.shape, w, b is not None, stride, padding, dilation, groups)


def conv2d_general_backward(gy, cache, need_input_grad=True):
    """(gx or None, gw, gb or None) of ``conv2d_general_forward``."""
    cols, x_shape, w, has_bias, stride, padding, dilation, groups = cache
    n, out_ch, oh, ow = gy.shape
    gy2 = gy.reshape(n, out_ch, oh * ow)
    gw = grouped_weight_grad(gy2, cols, w.shape, groups)
    gb = gy2.sum(axis=(0, 2)) if has_bias else None
    gx = None
    if need_input_grad:
        kh, kw = w.shape[2:]
        gcols = grouped_input_columns(gy2, w, groups)
        gx = col2im(gcols.reshape(n, x_shape[1], kh, kw, oh, ow), x_shape, stride, padding,
                    dilation)
    return gx, gw, gb


def conv_transpose2d_forward(x, w, b, stride, padding, dilation, groups, out_hw):
    """Transposed convolution (torch.nn.functional.conv_transpose2d); weight
    (C_in, C_out/groups, kh, kw), output (N, C_out, *out_hw): the input gradient of
    the convolution from C_out to C_in channels with this same weight."""
    n, _, h, wd = x.shape
    _, og, kh, kw = w.shape
    out_shape = (n, og * groups) + tuple(out_hw)
    gcols = grouped_input_columns(x.reshape(n, x.shape[1], h * wd), w, groups)
    y = col2im(gcols.reshape(n, out_shape[1], kh, kw, h, wd), out_shape, stride, padding,
               dilation)
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y, (x, w, b is not None, stride, padding, dilation, groups)


def conv_transpose2d_backward(gy, cache, need_input_grad=True):
    """(gx or None, gw, gb or None) of ``conv_transpose2d_forward``: the gradient
    wrt x is the convolution of gy with the weight, the weight's gradient the
    convolution's weight gradient with the roles of input and output swapped."""
    x, w, has_bias, stride, padding, dilation, groups = cache
    n, _, h, wd = x.shape
    kh, kw = w.shape[2:]
    cols = im2col(gy, (kh, kw), stride, padding, dilation=dilation)
    cols = cols[..., :h, :wd].reshape(n, -1, h * wd)
    x2 = x.reshape(n, x.shape[1], h * wd)
    gw = grouped_weight_grad(x2, cols, w.shape, groups)
    gb = gy.sum(axis=(0, 2, 3)) if has_bias else None
    gx = grouped_forward(cols, w, groups).reshape(x.shape) if need_input_grad else None
    return gx, gw, gb
