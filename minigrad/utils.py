"""Small helpers shared across minigrad, each in one place: argument checks
(:func:`is_int`, :func:`pair`), "is it a number" (:func:`is_number`) and "unwrap a
tensor" (:func:`unwrap`, :func:`as_numpy`). "Is it an array" is :func:`minigrad.backend.is_array`."""
import numbers

import numpy as np

from . import backend
# The module, not the class: tensor may import this module without a cycle.
from . import tensor as _tensor


def is_int(value):
    """True for a Python or NumPy integer, not a bool (torch refuses ``stride=True``)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def pair(value, what, op, minimum=0):
    """An int or a pair of ints, each at least ``minimum`` -> ``(a, b)``; else a clear
    error naming ``op`` and its argument ``what`` (TypeError for a wrong type or length,
    ValueError for a number below ``minimum``)."""
    both = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(both) != 2 or not all(is_int(v) for v in both):
        raise TypeError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    if min(both) < minimum:
        raise ValueError(f"{op}: {what} must be at least {minimum}, got {value!r}")
    return int(both[0]), int(both[1])


def is_number(value):
    """True for a real number: a Python or NumPy bool, int or float, or a 0-d array
    (NumPy, CuPy: what a reduction gives on the GPU) or 0-d Tensor of one; not complex."""
    if isinstance(value, numbers.Real):
        return True
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    return getattr(value, "ndim", None) == 0 and kind in ("b", "i", "u", "f")


def unwrap(value):
    """The array a Tensor holds; anything else as it is."""
    return value.data if isinstance(value, _tensor.Tensor) else value


def as_numpy(value):
    """A NumPy array of a Tensor, a NumPy or CuPy array (copied to the host), or anything
    array-like (a list, a number, a CPU torch tensor)."""
    return backend.to_numpy(unwrap(value))
