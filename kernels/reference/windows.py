"""Sliding-window gather/scatter shared by convolution and pooling (im2col/col2im),
and the index windows of the pooling ops that are gathers (ceil mode, adaptive)."""
import numpy as np

from .._xp import array_module


def output_size(size, kernel, stride, padding, dilation=1):
    """Output length of a window sweep along one axis (PyTorch's floor rule)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pad_nchw(x, padding, value=0.0, extra=(0, 0)):
    """Pad the two spatial axes of an NCHW array by ``(ph, pw)`` on each side, plus
    ``extra`` more rows (columns) at the bottom (right)."""
    (ph, pw), (eh, ew) = padding, extra
    if ph == pw == eh == ew == 0:
        return x
    xp = array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=value)


def im2col(x, kernel, stride, padding, pad_value=0.0, dilation=(1, 1)):
    """Gather windows: (N, C, H, W) -> (N, C, kh, kw, OH, OW); window element (i, j)
    is ``dilation`` apart from its neighbours."""
    xp = array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh = output_size(h, kh, sh, padding[0], dh)
    ow = output_size(w, kw, sw, padding[1], dw)
    xpad = pad_nchw(x, padding, pad_value)
    cols = xp.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xpad[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw]
    return cols


def col2im(cols, x_shape, stride, padding, dilation=(1, 1)):
    """Scatter-add windows back: (N, C, kh, kw, OH, OW) -> (N, C, H, W) (im2col's adjoint).

    OH and OW are read from ``cols``; a window grid smaller than ``x_shape`` admits
    leaves the rest zero (a transposed convolution's output_padding).
    """
    xp = array_module(cols)
    n, c, h, w = x_shape
    _, _, kh, kw, oh, ow = cols.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    # Room for windows that run past the padded edge, so slices never clip.
    gpad = xp.zeros((n, c, max(h + 2 * ph, (kh - 1) * dh + sh * oh),
                     max(w + 2 * pw, (kw - 1) * dw + sw * ow)), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            gpad[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw] += cols[:, :, i, j]
    return gpad[:, :, ph:ph + h, pw:pw + w]


def pool_output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Pooling's output length along one axis (torch's rule): ``ceil_mode`` rounds up,
    but the last window must start inside the input or its left padding."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def sliding_positions(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """(out, kernel) input positions of each window along one axis; -1 where a window
    element falls outside the input (padding, or past the edge in ceil mode)."""
    out = pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    pos = (np.arange(out)[:, None] * stride - padding) + np.arange(kernel)[None, :] * dilation
    return np.where((pos >= 0) & (pos < size), pos, -1)


def avg_divisors(size, kernel, stride, padding, ceil_mode, count_include_pad):
    """Per-output divisor along one axis of torch's avg_pool: the window's length
    clipped to the padded input (count_include_pad) or to the input itself."""
    out = pool_output_size(size, kernel, stride, padding, 1, ceil_mode)
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def adaptive_positions(size, out):
    """(out, longest window) input positions of torch's adaptive pooling along one axis
    (window i is [floor(i*size/out), ceil((i+1)*size/out))), -1 past each window's end."""
    i = np.arange(out)
    start = (i * size) // out
    end = -(-((i + 1) * size) // out)
    longest = int((end - start).max())
    pos = start[:, None] + np.arange(longest)[None, :]
    return np.where(pos < end[:, None], pos, -1)


def plane_windows(rows, cols, width):
    """Flat per-plane indices (iy * width + ix) of 2-D windows from the per-axis
    positions: (OH, kh) and (OW, kw) -> (OH, OW, kh * kw), -1 where either is -1."""
    oh, kh = rows.shape
    ow, kw = cols.shape
    r = rows[:, None, :, None]
    c = cols[None, :, None, :]
    flat = np.where((r >= 0) & (c >= 0), r * width + c, -1)
    return flat.reshape(oh, ow, kh * kw)
