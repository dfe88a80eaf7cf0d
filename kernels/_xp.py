"""Array-module lookup without importing minigrad: NumPy, or CuPy for CuPy arrays."""
import numpy as np

try:  # CuPy is the optional GPU extra
    import cupy as _cupy
except Exception:  # ImportError, or a CUDA library that fails to load
    _cupy = None


def array_module(array):
    """Return ``cupy`` for a CuPy array, else ``numpy``."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy
    return np
