"""Activations (relu, tanh, sigmoid) into reused buffers: ``activation_forward`` /
``activation_backward`` for the table, on ``forward_into`` / ``backward_into``,
which the fused convolution applies to its own output slices.

NumPy's ``maximum(x, 0)`` and ``where(y > 0, g, 0)`` cost a fresh output (page
faults on every step for the 26 MB first-layer activation) and, backward, a boolean
temporary and a second pass (their share of the training step: benchmarks/README.md,
"Design measurements", ``relu``). The Numba loops here are one pass each; tanh and exp are NumPy's SIMD ufuncs (see ``forward_into``).
Semantics are the reference's, bit for bit: NaN propagates forward; ReLU's backward
passes the gradient where the output is positive and zero elsewhere (even an
infinite or NaN gradient); every derivative is taken from the output y, computed in
the arrays' own dtype in the reference's order.
"""
import numpy as np
from numba import prange

from ..reference import activation as reference

from .._fallback import falls_back_to, one_fast_dtype
from ._buffers import POOL
from ._jit import cpu_kernel


@cpu_kernel
def _relu(x, y):
    for i in prange(x.size):
        v = x[i]
        # Written so that NaN (which compares false) is kept, as np.maximum keeps it.
        y[i] = 0 if v <= 0 else v


@cpu_kernel
def _relu_backward(gy, y, gx):
    for i in prange(gy.size):
        gx[i] = gy[i] if y[i] > 0 else 0


@cpu_kernel
def _tanh_backward(gy, y, gx):
    # A literal 1 would make Numba compute float32 arrays in float64 (int64 and
    # float32 unify to float64); the reference computes 1 - y*y in float32.
    one = y.dtype.type(1)
    for i in prange(gy.size):
        v = y[i]
        gx[i] = gy[i] * (one - v * v)


@cpu_kernel
def _negative_abs(x, y):
    for i in prange(x.size):
        y[i] = -abs(x[i])


@cpu_kernel
def _sigmoid_from_exp(x, e):
    """e = exp(-|x|) becomes sigmoid(x), in place (x only gives the sign). NaN takes
    the second branch and stays NaN."""
    one = e.dtype.type(1)
    for i in prange(x.size):
        v = e[i]
        e[i] = one / (one + v) if x[i] >= 0 else v / (one + v)


@cpu_kernel
def _sigmoid_backward(gy, y, gx):
    one = y.dtype.type(1)
    for i in prange(gy.size):
        v = y[i]
        gx[i] = gy[i] * v * (one - v)


def forward_into(name, x, out):
    """out = name(x) for a name in ``reference.FUSABLE``; flat contiguous float32/float64 arrays of
    one dtype that do not overlap (ValueError if they may).

    Why not in place: LLVM guards each vectorised loop with a runtime check that
    the arrays do not overlap, so with one array as input and output the scalar
    loop runs, several times slower. tanh and exp are NumPy's ufuncs, not Numba
    loops: Numba calls the scalar libm functions, far slower than NumPy's SIMD loops.
    Both measured by ``benchmarks/design_measurements.py`` (``relu-in-place``,
    ``tanh-exp``; numbers in benchmarks/README.md, "Design measurements").
    """
    reference.require_activation(name, "forward_into")
    if np.may_share_memory(x, out):
        raise ValueError("forward_into: out must not overlap x")
    if name == "relu":
        _relu(x, out)
    elif name == "tanh":
        np.tanh(x, out=out)
    else:  # sigmoid, from exp of a non-positive number only: no overflow at +-1e4
        _negative_abs(x, out)
        np.exp(out, out=out)
        _sigmoid_from_exp(x, out)


_BACKWARD = {"relu": _relu_backward, "tanh": _tanh_backward, "sigmoid": _sigmoid_backward}


def backward_into(name, gy, y, out):
    """out = gy * name'(.) taken from the output y (relu y > 0, tanh 1 - y^2, sigmoid
    y (1 - y)); flat contiguous arrays of one float dtype. An ``out`` that overlaps
    an input gives the same values, through a scalar loop (see ``forward_into``)."""
    _BACKWARD[reference.require_activation(name, "backward_into")](gy, y, out)


@falls_back_to(reference.activation_forward, arrays=("x",))
def activation_forward(name, x):
    """y = name(x) for a name in ``reference.FUSABLE``, one pass into a reused buffer (other dtypes:
    the reference)."""
    # y takes x's own shape: ascontiguousarray makes a 0-d array 1-d.
    y = POOL.empty(f"{name}.y", x.shape, x.dtype)
    forward_into(name, np.ascontiguousarray(x).reshape(-1), y.reshape(-1))
    return y


@falls_back_to(reference.activation_backward, arrays=("gy", "y"), accepts=one_fast_dtype)
def activation_backward(name, gy, y):
    """gx from gy and the activation's output y, one pass into a reused buffer."""
    gx = POOL.empty(f"{name}.gx", gy.shape, gy.dtype)  # gy's shape, 0-d included
    backward_into(name, np.ascontiguousarray(gy).reshape(-1),
                  np.ascontiguousarray(y).reshape(-1), gx.reshape(-1))
    return gx
