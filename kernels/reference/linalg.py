"""Matrix products: the array module's own ``matmul`` (BLAS on NumPy, cuBLAS on CuPy)."""
from .._xp import array_module


def matmul(a, b):
    """NumPy's ``matmul(a, b)`` on the operands' array module."""
    return array_module(a).matmul(a, b)
