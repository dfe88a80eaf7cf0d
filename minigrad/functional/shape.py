"""Shapes and indexing: ``reshape``, ``flatten``, ``transpose``, ``swapaxes``, ``getitem``."""
import math

import numpy as np

from .. import backend
from ..tensor import Tensor
from ._core import _axis, _is_int, _record, _xp


def reshape(x, shape):
    try:
        y = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into {tuple(shape)}") from None

    def reshape_backward(g):
        return (g.reshape(x.shape),)
    return _record(y, (x,), reshape_backward)


def flatten(x, start_dim=1):
    """Merge every axis from ``start_dim`` on into one (torch.flatten).

    ``start_dim`` must name an axis of ``x`` (a 0-d tensor flattens to shape (1,)).
    """
    if x.ndim == 0 and start_dim in (0, -1):
        return reshape(x, (1,))
    if not -x.ndim <= start_dim < x.ndim:
        raise ValueError(f"flatten: start_dim {start_dim} is out of range for a tensor of "
                         f"shape {x.shape} ({x.ndim} dimensions)")
    start_dim %= x.ndim
    return reshape(x, x.shape[:start_dim] + (math.prod(x.shape[start_dim:]),))



def transpose(x, axes=None):
    """The axes permuted by ``axes`` (NumPy's transpose), or reversed when None.

    ``axes`` must be a permutation of the ``x.ndim`` axes; negative ones count from
    the end. The gradient goes back through the inverse permutation.
    """
    if axes is not None:
        given = tuple(axes)
        axes = tuple(int(a) % x.ndim for a in given if _is_int(a) and -x.ndim <= a < x.ndim)
        if len(given) != x.ndim or sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {given} are not a permutation of the "
                             f"{x.ndim} axes of a tensor of shape {x.shape}")
    inverse = None if axes is None else tuple(np.argsort(axes))

    def transpose_backward(g):
        return (g.transpose(inverse),)
    return _record(x.data.transpose(axes), (x,), transpose_backward)


def swapaxes(x, axis1, axis2):
    """``x`` with two axes exchanged (torch.transpose(x, dim0, dim1))."""
    axes = list(range(x.ndim))
    i, j = _axis(axis1, x.ndim, "swapaxes"), _axis(axis2, x.ndim, "swapaxes")
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(x, axes)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)

    def getitem_backward(g):
        full = _xp(x).zeros(x.shape, dtype=g.dtype)
        backend.scatter_add(full, index, g)  # repeated indices add up
        return (full,)
    return _record(x.data[index], (x,), getitem_backward)
