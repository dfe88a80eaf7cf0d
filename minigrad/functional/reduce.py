"""Reductions over axes: ``sum``, ``mean``, ``max``."""
import math

from ._core import _record, _xp


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


def _expand_reduced(g, shape, axes, keepdims):
    """Give a reduced gradient its reduced axes back so it broadcasts to ``shape``."""
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


def sum(x, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    xp = _xp(x)

    def sum_backward(g):
        return (xp.broadcast_to(_expand_reduced(g, x.shape, axes, keepdims), x.shape),)
    return _record(x.data.sum(axis=axes, keepdims=keepdims), (x,), sum_backward)


def mean(x, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    xp = _xp(x)

    def mean_backward(g):
        g = _expand_reduced(g, x.shape, axes, keepdims) / count
        return (xp.broadcast_to(g, x.shape).astype(x.dtype, copy=False),)
    return _record(x.data.mean(axis=axes, keepdims=keepdims), (x,), mean_backward)


def max(x, axis=None, keepdims=False):
    """Maximum over axes; ties share the gradient equally (as torch.amax)."""
    axes = _axes(axis, x.ndim)
    y = x.data.max(axis=axes, keepdims=True)

    def max_backward(g):
        mask = (x.data == y).astype(x.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        return (mask * _expand_reduced(g, x.shape, axes, keepdims),)
    out = y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return _record(out, (x,), max_backward)
