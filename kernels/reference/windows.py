"""Sliding-window gather/scatter shared by convolution and pooling (im2col/col2im)."""
from .._xp import array_module


def output_size(size, kernel, stride, padding):
    """Output length of a window sweep along one axis (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def pad_nchw(x, padding, value=0.0):
    """Pad the two spatial axes of an NCHW array by ``(ph, pw)``."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def im2col(x, kernel, stride, padding, pad_value=0.0):
    """Gather windows: (N, C, H, W) -> (N, C, kh, kw, OH, OW)."""
    xp = array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    oh = output_size(h, kh, sh, padding[0])
    ow = output_size(w, kw, sw, padding[1])
    xpad = pad_nchw(x, padding, pad_value)
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]
    return cols


def col2im(cols, x_shape, stride, padding):
    """Scatter-add windows back: (N, C, kh, kw, OH, OW) -> (N, C, H, W)."""
    xp = array_module(cols)
    n, c, h, w = x_shape
    _, _, kh, kw, oh, ow = cols.shape
    (sh, sw), (ph, pw) = stride, padding
    # Room for windows that run past the padded edge, so slices never clip.
    gpad = xp.zeros((n, c, h + 2 * ph + sh - 1, w + 2 * pw + sw - 1), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            gpad[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols[:, :, i, j]
    return gpad[:, :, ph:ph + h, pw:pw + w]
