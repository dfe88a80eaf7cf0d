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


#: The dtypes the fast kernels are built for (CPU and CUDA alike).
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def fast_dtype(*arrays):
    """The dtype the fast kernels compute in: NumPy's result type of the arrays'
    dtypes when it is float32 or float64, else None, which sends the call to the
    reference kernel (float16 and integers keep NumPy's rules there). Read from the
    dtypes, so it serves NumPy and CuPy arrays alike."""
    dtype = np.result_type(*(array.dtype for array in arrays))
    return dtype if dtype in FLOAT_DTYPES else None
