"""Resizing: ``pad`` (constant, reflect, replicate, circular) and ``interpolate``
(nearest, nearest-exact, linear, bilinear, area), as torch.nn.functional names them.

Every mode but constant padding is separable: along each axis, output element o is a
weighted sum of a few input elements (index[o, t], weights[o, t]), so one gather op,
``_resample``, serves them all; its backward adds each gradient back with a bincount.
"""
import math

import numpy as np

from .._kernels import kernel_module
from ..utils import is_int
from ._core import _record, _xp

adaptive_positions = kernel_module("reference.windows").adaptive_positions


def _resample(x, axis, index, weights=None):
    """y[..., o, ...] = sum_t weights[o, t] * x[..., index[o, t], ...] along ``axis``.

    ``index`` (out, taps) are positions in [0, x.shape[axis]); ``weights`` (out, taps)
    default to one (a plain gather: nearest neighbours, padding by reflection).
    """
    xp = _xp(x)
    size = x.shape[axis]
    index = np.asarray(index, dtype=np.int64)
    moved = xp.moveaxis(x.data, axis, -1)
    idx = xp.asarray(index)
    w = None if weights is None else xp.asarray(np.asarray(weights, dtype=x.dtype))
    values = moved[..., idx]  # (..., out, taps)
    y = values.sum(axis=-1) if w is None else (values * w).sum(axis=-1)
    y = xp.moveaxis(y, -1, axis)

    def resample_backward(g):
        gm = xp.moveaxis(g, axis, -1)
        lead = gm.shape[:-1]
        rows = int(np.prod(lead))
        share = xp.broadcast_to(gm[..., None], gm.shape + idx.shape[-1:])
        if w is not None:
            share = share * w
        offsets = xp.arange(rows).reshape(lead + (1, 1)) * size + idx
        gx = xp.bincount(offsets.reshape(-1), weights=share.reshape(-1),
                         minlength=rows * size)
        gx = gx.astype(g.dtype, copy=False).reshape(lead + (size,))
        return (xp.moveaxis(gx, -1, axis),)
    return _record(xp.ascontiguousarray(y), (x,), resample_backward)


def adaptive_mean(x, axis, out):
    """Means over torch's adaptive windows along ``axis``: output i covers input
    [floor(i*size/out), ceil((i+1)*size/out)) (adaptive pooling, interpolate's "area")."""
    positions = adaptive_positions(x.shape[axis], out)
    inside = positions >= 0
    return _resample(x, axis, np.where(inside, positions, 0),
                     inside / inside.sum(axis=1, keepdims=True))


# ------------------------------------------------------------------------------ pad

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_positions(size, before, after, mode):
    """Input positions of the padded axis for the gathering pad modes, or a clear error."""
    pos = np.arange(-before, size + after)
    if mode == "replicate":
        return np.clip(pos, 0, size - 1)
    if mode == "circular":
        if before > size or after > size:
            raise ValueError(f"pad: circular padding ({before}, {after}) must be at most "
                             f"the size {size} of the padded dimension")
        return pos % size
    if before >= size or after >= size:  # reflect
        raise ValueError(f"pad: reflect padding ({before}, {after}) must be smaller than "
                         f"the size {size} of the padded dimension")
    period = 2 * (size - 1)
    pos = np.abs(pos) % max(period, 1)
    return np.where(pos >= size, period - pos, pos)


def pad(x, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dimensions (torch.nn.functional.pad): ``pad`` is
    (left, right) of the last dimension, then (top, bottom) of the one before, ...

    ``constant`` fills with ``value`` (0 by default) and takes negative amounts as
    cropping; ``reflect`` mirrors without repeating the edge, ``replicate`` repeats
    it, ``circular`` wraps around. As in torch, the other modes pad at most the last
    three dimensions of a batched (or unbatched) input.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: unknown mode {mode!r}; choose one of {PAD_MODES}")
    pad = tuple(pad)
    if len(pad) % 2 or not all(is_int(p) for p in pad):
        raise ValueError(f"pad: pad must be an even-length sequence of ints, got {pad!r}")
    dims = len(pad) // 2
    if dims > x.ndim:
        raise ValueError(f"pad: pad {pad} pads {dims} dimensions but the input has only "
                         f"{x.ndim} (shape {x.shape})")
    sides = [(int(pad[2 * i]), int(pad[2 * i + 1]), x.ndim - 1 - i) for i in range(dims)]
    if mode == "constant":
        return _constant_pad(x, sides, 0 if value is None else value)
    if value not in (None, 0):
        raise ValueError(f"pad: value={value!r} is only for mode='constant', not {mode!r}")
    if dims > 3 or x.ndim not in (dims + 1, dims + 2):
        raise ValueError(f"pad: mode {mode!r} pads the last 1-3 dimensions of a "
                         f"(batched) input, i.e. {dims} padded dimensions need a "
                         f"{dims + 1}-D or {dims + 2}-D input; got shape {x.shape}")
    for before, after, axis in sides:
        if before < 0 or after < 0:
            raise ValueError(f"pad: mode {mode!r} takes non-negative padding, got {pad}")
        if before or after:
            x = _resample(x, axis, _pad_positions(x.shape[axis], before, after, mode)[:, None])
    return x


def _constant_pad(x, sides, value):
    """Pad with ``value``; a negative amount crops that side instead."""
    xp = _xp(x)
    crop = [slice(None)] * x.ndim  # what of x is kept
    inner = [slice(None)] * x.ndim  # where it lands in y
    widths = [(0, 0)] * x.ndim
    for before, after, axis in sides:
        size = x.shape[axis]
        start, stop = max(-before, 0), size - max(-after, 0)
        if stop < start:
            raise ValueError(f"pad: padding ({before}, {after}) crops more than the "
                             f"size {size} of dimension {axis}")
        crop[axis] = slice(start, stop)
        inner[axis] = slice(max(before, 0), max(before, 0) + stop - start)
        widths[axis] = (max(before, 0), max(after, 0))
    crop, inner = tuple(crop), tuple(inner)
    y = xp.pad(x.data[crop], widths, constant_values=value)

    def pad_backward(g):
        gx = xp.zeros(x.shape, dtype=g.dtype)
        gx[crop] = g[inner]
        return (gx,)
    return _record(y, (x,), pad_backward)


# ------------------------------------------------------------------------- interpolate

INTERPOLATE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "area")


def _nearest_index(in_size, out_size, scale, exact):
    """torch's nearest source index, computed in float32 as torch does."""
    dst = np.arange(out_size, dtype=np.float32)
    if exact:
        dst = dst + np.float32(0.5)
    src = np.floor(dst * np.float32(scale)).astype(np.int64)
    return np.minimum(src, in_size - 1)[:, None]


def _linear_taps(in_size, out_size, scale, align_corners):
    """torch's two source indices and weights of linear interpolation along an axis."""
    dst = np.arange(out_size, dtype=np.float64)
    if align_corners:
        scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        src = scale * dst
    else:
        src = np.maximum(scale * (dst + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    frac = src - i0
    i1 = np.minimum(i0 + 1, in_size - 1)
    return np.stack([i0, i1], axis=1), np.stack([1 - frac, frac], axis=1)


def _output_sizes(x, size, scale_factor, spatial):
    """(out sizes, source-per-output scales) from ``size`` or ``scale_factor``."""
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_sizes = x.shape[2:]
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        if len(sizes) != spatial or not all(is_int(s) and s >= 1 for s in sizes):
            raise ValueError(f"interpolate: size must be a positive int or {spatial} of "
                             f"them for a {x.ndim}-D input, got {size!r}")
        return tuple(int(s) for s in sizes), [i / o for i, o in zip(in_sizes, sizes)]
    factors = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else \
        (scale_factor,) * spatial
    if len(factors) != spatial or not all(isinstance(f, (int, float, np.number)) and f > 0
                                          for f in factors):
        raise ValueError(f"interpolate: scale_factor must be a positive number or {spatial} "
                         f"of them, got {scale_factor!r}")
    sizes = tuple(int(math.floor(i * f)) for i, f in zip(in_sizes, factors))
    if min(sizes) < 1:
        raise ValueError(f"interpolate: scale_factor {scale_factor} leaves an empty output "
                         f"for input size {tuple(in_sizes)}")
    return sizes, [1.0 / f for f in factors]


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize the spatial dimensions of (N, C, L) or (N, C, H, W) ``x``
    (torch.nn.functional.interpolate): ``mode`` "nearest" (torch's default and its
    index rule), "nearest-exact", "linear" (3-D), "bilinear" (4-D) or "area" (adaptive
    average pooling). ``align_corners`` (linear modes only) maps the corner pixels'
    centres onto each other. Given ``scale_factor``, torch's indices use it as given
    (recompute_scale_factor=None).
    """
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f"interpolate: unknown mode {mode!r}; choose one of "
                         f"{INTERPOLATE_MODES}")
    if x.ndim not in (3, 4):
        raise ValueError(f"interpolate: expected a 3-D (N, C, L) or 4-D (N, C, H, W) input, "
                         f"got shape {x.shape}")
    spatial = x.ndim - 2
    linear = {"linear": 3, "bilinear": 4}
    if mode in linear and x.ndim != linear[mode]:
        raise ValueError(f"interpolate: mode {mode!r} needs a {linear[mode]}-D input, got "
                         f"shape {x.shape}")
    if align_corners is not None and mode not in linear:
        raise ValueError(f"interpolate: align_corners is only for the linear modes, not "
                         f"{mode!r}")
    sizes, scales = _output_sizes(x, size, scale_factor, spatial)
    if mode == "area":  # adaptive windows, no scale: torch ignores the factor here too
        scales = [None] * spatial
    for axis, out, scale in zip(range(2, x.ndim), sizes, scales):
        in_size = x.shape[axis]
        if mode in ("nearest", "nearest-exact"):
            x = _resample(x, axis, _nearest_index(in_size, out, scale, mode != "nearest"))
        elif mode == "area":
            x = adaptive_mean(x, axis, out)
        else:
            x = _resample(x, axis, *_linear_taps(in_size, out, scale, bool(align_corners)))
    return x
