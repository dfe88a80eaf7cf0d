"""Reductions over dims, with torch's names and semantics: ``sum``, ``mean``, ``prod``,
``amax``/``amin``, ``max``/``min`` (values and indices), ``argmax``/``argmin``,
``var``/``std``, ``logsumexp``, ``norm``, ``cumsum``, ``any``/``all``.

Every op takes ``dim``/``keepdim`` (NumPy's ``axis``/``keepdims`` as aliases, resolved
by ``_core._dim_alias``); a dim out of range is an IndexError (``_core._dims``).
"""
import builtins
import math

import numpy as np

from ..tensor import Tensor
from ._core import _as_float, _axis, _dim_alias, _dims, _record, _xp
from .elementwise import _sqrt_zero_gradient_at_zero, abs, maximum, minimum, pow
from .shape import ValuesIndices, _values_at, reshape


def _expand_reduced(g, shape, axes, keepdim):
    """Give a reduced gradient its reduced axes back so it broadcasts to ``shape``."""
    if not keepdim:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


def _dropped(y, axes, keepdim):
    """A keepdims result with the reduced axes dropped unless ``keepdim``."""
    return y if keepdim else y.reshape([n for i, n in enumerate(y.shape) if i not in axes])


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Sum over ``dim`` (all dims when None); bool and integer tensors sum to int64."""
    dim, keepdim = _dim_alias("sum", dim, axis, keepdim, keepdims)
    axes = _dims(dim, x.ndim, "sum")
    xp = _xp(x)
    dtype = np.int64 if x.dtype.kind in "biu" else None

    def sum_backward(g):
        return (xp.broadcast_to(_expand_reduced(g, x.shape, axes, keepdim), x.shape),)
    return _record(x.data.sum(axis=axes, keepdims=keepdim, dtype=dtype), (x,), sum_backward)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = _dim_alias("mean", dim, axis, keepdim, keepdims)
    axes = _dims(dim, x.ndim, "mean")
    x = _as_float(x)
    count = math.prod(x.shape[a] for a in axes)
    xp = _xp(x)

    def mean_backward(g):
        g = _expand_reduced(g, x.shape, axes, keepdim) / count
        return (xp.broadcast_to(g, x.shape).astype(x.dtype, copy=False),)
    return _record(x.data.mean(axis=axes, keepdims=keepdim), (x,), mean_backward)


def _extreme(x, dim, keepdim, op, pick):
    """amax/amin: ties share the gradient equally (as torch.amax)."""
    axes = _dims(dim, x.ndim, op)
    y = pick(x.data, axis=axes, keepdims=True)

    def extreme_backward(g):
        mask = (x.data == y).astype(g.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        return (mask * _expand_reduced(g, x.shape, axes, keepdim),)
    return _record(_dropped(y, axes, keepdim), (x,), extreme_backward, op)


def amax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Maximum over ``dim`` (an int or a tuple; all when None); ties share the gradient."""
    dim, keepdim = _dim_alias("amax", dim, axis, keepdim, keepdims)
    return _extreme(x, dim, keepdim, "amax", _xp(x).max)


def amin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Minimum over ``dim`` (an int or a tuple; all when None); ties share the gradient."""
    dim, keepdim = _dim_alias("amin", dim, axis, keepdim, keepdims)
    return _extreme(x, dim, keepdim, "amin", _xp(x).min)


def _arg_extreme(x, dim, keepdim, op, pick):
    """The index of the first extreme along ``dim`` (over the flattened tensor when None)
    as an int64 tensor; NaN counts as the extreme, as torch."""
    if x.size == 0:
        raise IndexError(f"{op}: cannot take the {op} of an empty tensor")
    if dim is None:
        index = pick(x.data.reshape(-1), axis=0)
        return Tensor(index.reshape((1,) * x.ndim) if keepdim else index.reshape(()))
    axis = _axis(dim, x.ndim, op)
    if x.ndim == 0:
        return Tensor(_xp(x).zeros((), dtype=np.int64))
    return Tensor(pick(x.data, axis=axis, keepdims=keepdim).astype(np.int64, copy=False))


def argmax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = _dim_alias("argmax", dim, axis, keepdim, keepdims)
    return _arg_extreme(x, dim, keepdim, "argmax", _xp(x).argmax)


def argmin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    dim, keepdim = _dim_alias("argmin", dim, axis, keepdim, keepdims)
    return _arg_extreme(x, dim, keepdim, "argmin", _xp(x).argmin)


def _extreme_with_index(x, dim, keepdim, op, elementwise, values_only, arg):
    """torch.max / torch.min in their three forms: of two tensors (elementwise), over
    ``dim`` ((values, indices)) or over everything (a 0-d tensor)."""
    if isinstance(dim, Tensor):  # torch.max(x, other)
        return elementwise(x, dim)
    if dim is None or isinstance(dim, (tuple, list)):  # all, or NumPy's several axes
        return values_only(x, dim, keepdim)
    axis = _axis(dim, x.ndim, op)
    if x.ndim == 0:  # torch: the value itself, at index 0
        return ValuesIndices(reshape(x, ()), Tensor(_xp(x).zeros((), dtype=np.int64)))
    index = arg(x, axis, True).data
    return ValuesIndices(_values_at(x, index, axis, keepdim),
                         Tensor(index if keepdim else _xp(x).squeeze(index, axis)))


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """torch.max: ``max(x)`` the largest element (0-d, ties share the gradient);
    ``max(x, dim)`` the named tuple (values, indices) along ``dim`` (the gradient goes
    to the index); ``max(x, other_tensor)`` the elementwise maximum. A tuple of dims
    (NumPy's habit) gives the values alone, as ``amax``."""
    dim, keepdim = _dim_alias("max", dim, axis, keepdim, keepdims)
    return _extreme_with_index(x, dim, keepdim, "max", maximum, amax, argmax)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """torch.min: as :func:`max`, for the smallest."""
    dim, keepdim = _dim_alias("min", dim, axis, keepdim, keepdims)
    return _extreme_with_index(x, dim, keepdim, "min", minimum, amin, argmin)


def prod(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Product over one ``dim`` (all elements when None). The gradient of each element is
    the product of the others, exact where elements are zero (no division)."""
    dim, keepdim = _dim_alias("prod", dim, axis, keepdim, keepdims)
    xp = _xp(x)
    if dim is None:
        flat = prod(reshape(x, (-1,)), 0)
        return reshape(flat, (1,) * x.ndim) if keepdim else flat
    axis = _axis(dim, x.ndim, "prod")
    if x.ndim == 0:
        return reshape(x, ())
    dtype = np.int64 if x.dtype.kind in "biu" else None
    y = x.data.prod(axis=axis, keepdims=True, dtype=dtype)

    def prod_backward(g):
        # product of the elements before each one times the product of those after
        ones = xp.ones_like(xp.take(x.data, [0], axis=axis))
        before = xp.cumprod(xp.concatenate([ones, x.data], axis=axis), axis=axis)
        before = xp.take(before, xp.arange(x.shape[axis]), axis=axis)
        after = xp.flip(xp.cumprod(xp.flip(xp.concatenate([x.data, ones], axis=axis), axis),
                                   axis=axis), axis)
        after = xp.take(after, xp.arange(1, x.shape[axis] + 1), axis=axis)
        return (_expand_reduced(g, x.shape, (axis,), keepdim) * before * after,)
    return _record(_dropped(y, (axis,), keepdim), (x,), prod_backward)


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    """Variance over ``dim``: sum((x - mean)^2) / (N - correction). ``correction``
    defaults to 1 (Bessel's); ``unbiased=False`` is ``correction=0`` (torch's older
    spelling). N <= correction gives inf or NaN, as torch."""
    dim, keepdim = _dim_alias("var", dim, axis, keepdim, keepdims)
    if unbiased is not None and correction is not None:
        raise TypeError("var: give correction= or unbiased=, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _dims(dim, x.ndim, "var")
    x = _as_float(x)
    count = math.prod(x.shape[a] for a in axes)
    centred = x - mean(x, axes, keepdim=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return sum(centred * centred, axes, keepdim) / builtins.max(count - correction, 0)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
        keepdims=None):
    """Standard deviation: the square root of :func:`var` (same arguments). Where it is
    0 the gradient is 0, as torch."""
    v = var(x, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)
    return _sqrt_zero_gradient_at_zero(v)


def logsumexp(x, dim, keepdim=False, *, axis=None, keepdims=None):
    """log(sum(exp(x))) over ``dim``, computed without overflow; its gradient is the
    softmax. All -inf gives -inf; a +inf gives +inf."""
    dim, keepdim = _dim_alias("logsumexp", dim, axis, keepdim, keepdims)
    axes = _dims(dim, x.ndim, "logsumexp")
    x = _as_float(x)
    xp = _xp(x)
    peak = x.data.max(axis=axes, keepdims=True) if x.size else xp.zeros(
        [1 if i in axes else n for i, n in enumerate(x.shape)], x.dtype)
    peak = xp.where(xp.isfinite(peak), peak, 0)  # -inf or inf: shift by nothing
    with np.errstate(divide="ignore"):
        y = xp.log(xp.exp(x.data - peak).sum(axis=axes, keepdims=True)) + peak

    def logsumexp_backward(g):
        return (_expand_reduced(g, x.shape, axes, keepdim) * xp.exp(x.data - y),)
    return _record(_dropped(y, axes, keepdim), (x,), logsumexp_backward)


def norm(x, p="fro", dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The vector p-norm over ``dim`` (all elements when None), as torch.norm:
    ``p`` = 2 or "fro" (sqrt of the sum of squares; gradient 0 at 0), 1, inf (the
    largest magnitude; ties share the gradient), -inf, 0 (the count of non-zeros) or
    any other positive number."""
    dim, keepdim = _dim_alias("norm", dim, axis, keepdim, keepdims)
    if p == "fro":
        p = 2
    if isinstance(p, str) or not isinstance(p, (int, float)):
        raise ValueError(f"norm: p must be a number, inf, -inf or 'fro', got {p!r}")
    x = _as_float(x)
    if p == 2:
        return _sqrt_zero_gradient_at_zero(sum(x * x, dim, keepdim))
    if p == 1:
        return sum(abs(x), dim, keepdim)
    if p == math.inf:
        return amax(abs(x), dim, keepdim)
    if p == -math.inf:
        return amin(abs(x), dim, keepdim)
    if p == 0:
        return sum(x != 0, dim, keepdim).astype(x.dtype)
    if p < 0:
        raise ValueError(f"norm: p must be positive (or 0, inf, -inf), got {p}")
    return pow(sum(pow(abs(x), p), dim, keepdim), 1.0 / p)


def cumsum(x, dim, *, axis=None):
    """Running sum along ``dim``; integer and bool tensors give int64, as torch."""
    dim, _ = _dim_alias("cumsum", dim, axis)
    axis = _axis(dim, x.ndim, "cumsum")
    xp = _xp(x)
    if x.ndim == 0:
        return reshape(x, ())
    dtype = np.int64 if x.dtype.kind in "biu" else None

    def cumsum_backward(g):
        return (xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis),)
    return _record(xp.cumsum(x.data, axis=axis, dtype=dtype), (x,), cumsum_backward)


def _logical(x, dim, keepdim, op, pick):
    axes = _dims(dim, x.ndim, op)
    return Tensor(_xp(x).asarray(pick(x.data != 0, axis=axes, keepdims=keepdim)))


def any(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """True where any element along ``dim`` is non-zero (a bool tensor, no gradient)."""
    dim, keepdim = _dim_alias("any", dim, axis, keepdim, keepdims)
    return _logical(x, dim, keepdim, "any", _xp(x).any)


def all(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """True where every element along ``dim`` is non-zero (a bool tensor, no gradient)."""
    dim, keepdim = _dim_alias("all", dim, axis, keepdim, keepdims)
    return _logical(x, dim, keepdim, "all", _xp(x).all)
