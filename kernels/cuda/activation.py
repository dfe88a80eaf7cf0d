"""Elementwise activations on the GPU, one kernel each way (activation.cu).

ReLU, tanh and sigmoid (F.relu, F.tanh, F.sigmoid) share the device functions the
fused convolution uses; the
derivative is taken from the output. Arrays of other dtypes (float16) go to the
reference's CuPy expressions.
"""
import numpy as np

from .._fallback import falls_back_to, one_fast_dtype
from ..reference import activation as reference
from .compile import ACTIVATION_CODES, cp, grid_1d, kernel, launch

_SOURCE = "activation.cu"


@falls_back_to(reference.activation_forward, arrays=("x",))
def activation_forward(name, x):
    """y = name(x) for a name in ``reference.FUSABLE``."""
    code = ACTIVATION_CODES[reference.require_activation(name, "activation_forward")]
    # y takes x's own shape: ascontiguousarray may make a 0-d array 1-d.
    y = cp.empty(x.shape, dtype=x.dtype)
    x = cp.ascontiguousarray(x)
    launch(kernel(_SOURCE, "activation_forward", x.dtype), grid_1d(x.size),
           (x, y, np.int64(x.size), np.int32(code)))
    return y


@falls_back_to(reference.activation_backward, arrays=("gy", "y"), accepts=one_fast_dtype)
def activation_backward(name, gy, y):
    """gx from gy and the activation's output y (relu: gy where y > 0, else 0)."""
    code = ACTIVATION_CODES[reference.require_activation(name, "activation_backward")]
    gx = cp.empty(gy.shape, dtype=gy.dtype)  # gy's shape, 0-d included
    gy, y = cp.ascontiguousarray(gy), cp.ascontiguousarray(y)
    launch(kernel(_SOURCE, "activation_backward", gy.dtype), grid_1d(gy.size),
           (gy, y, gx, np.int64(gy.size), np.int32(code)))
    return gx
