"""Small helpers shared across minigrad, each in one place: argument checks
(:func:`is_int`, :func:`pair`) used by ``functional``, ``nn`` and ``data``."""
import numpy as np


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
