"""Elementwise arithmetic and the matrix product: ``+ - * / **``, ``neg``, ``exp``,
``log``, ``abs``, ``matmul`` and ``linear``."""
import numpy as np

from .. import backend
from ..tensor import Tensor, is_scalar
from ._core import (_check_bias, _operands, _promoted, _record, _same_device, _xp, cast,
                    unbroadcast)
from .shape import reshape


def add(a, b):
    a, b = _operands(a, b, "add")

    def add_backward(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)
    return _record(a.data + b.data, (a, b), add_backward)


def sub(a, b):
    a, b = _operands(a, b, "sub")

    def sub_backward(g):
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)
    return _record(a.data - b.data, (a, b), sub_backward)


def mul(a, b):
    a, b = _operands(a, b, "mul")

    def mul_backward(g):
        return unbroadcast(g * b.data, a.shape), unbroadcast(g * a.data, b.shape)
    return _record(a.data * b.data, (a, b), mul_backward)


def div(a, b):
    """a / b: true division, so integer operands give float32 (as torch)."""
    a, b = _operands(a, b, "div")
    if a.dtype.kind != "f" and b.dtype.kind != "f":
        a, b = cast(a, np.float32), cast(b, np.float32)

    def div_backward(g):
        ga = g / b.data
        return unbroadcast(ga, a.shape), unbroadcast(-ga * a.data / b.data, b.shape)
    return _record(a.data / b.data, (a, b), div_backward)


def neg(x):
    def neg_backward(g):
        return (-g,)
    return _record(-x.data, (x,), neg_backward)


def pow(x, exponent):
    """x ** exponent; either may be a number or an array, the other a Tensor.

    The derivative in x is 0 where the exponent is 0 (x ** 0 is constant, even at
    x = 0), as torch; the derivative in the exponent takes log(x) as 0 where x <= 0.
    """
    if isinstance(x, Tensor) and is_scalar(exponent):  # the common x ** 2: no exponent node
        x = _promoted(x, exponent)
        if isinstance(exponent, np.generic):  # a Python number never widens x's dtype
            exponent = exponent.item()
        y = x.data ** exponent

        def pow_backward(g):
            if exponent == 0:
                return (_xp(x).zeros_like(g),)
            return (g * exponent * x.data ** (exponent - 1),)
        return _record(y, (x,), pow_backward)
    x, exponent = _operands(x, exponent, "pow")
    y = x.data ** exponent.data

    def pow_tensor_backward(g):
        xp = _xp(x)
        gx = ge = None
        if x.requires_grad:
            e = exponent.data
            # e * x ** (e - 1), with x ** 1 standing in where e == 0 (a 0 times a
            # finite number, never 0 * inf at x = 0).
            gx = unbroadcast(g * e * x.data ** xp.where(e == 0, 1, e - 1), x.shape)
        if exponent.requires_grad:
            ge = unbroadcast(g * y * xp.log(xp.where(x.data > 0, x.data, 1)), exponent.shape)
        return gx, ge
    return _record(y, (x, exponent), pow_tensor_backward)


def exp(x):
    y = _xp(x).exp(x.data)

    def exp_backward(g):
        return (g * y,)
    return _record(y, (x,), exp_backward)


def log(x):
    def log_backward(g):
        return (g / x.data,)
    return _record(_xp(x).log(x.data), (x,), log_backward)


def abs(x):
    """|x|; its derivative sign(x) is 0 at 0, as torch."""
    xp = _xp(x)

    def abs_backward(g):
        return (g * xp.sign(x.data),)
    return _record(xp.abs(x.data), (x,), abs_backward)



def matmul(a, b):
    """Matrix product with NumPy's and torch's rules.

    Batched over leading axes, which broadcast; a 1-D first operand is a row vector
    and a 1-D second a column vector, whose axis the result then drops (1-D @ 1-D is
    the 0-d dot product).
    """
    a, b = _operands(a, b, "matmul", broadcast=False)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{a.shape} and {b.shape} (use * to scale by a scalar)")
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if a.shape[-1] != inner_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not line up "
                         f"({a.shape[-1]} != {inner_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dimensions of shapes {a.shape} and {b.shape} "
                         f"({a.shape[:-2]} and {b.shape[:-2]}) cannot be broadcast "
                         f"together") from None
    if a.ndim == 1 or b.ndim == 1:
        # As matrices, then drop the axis each vector gained.
        product = _matmul(reshape(a, (1, -1)) if a.ndim == 1 else a,
                          reshape(b, (-1, 1)) if b.ndim == 1 else b)
        shape = product.shape[:-2] + (product.shape[-2:-1] if a.ndim > 1 else ()) \
            + (product.shape[-1:] if b.ndim > 1 else ())
        return reshape(product, shape)
    return _matmul(a, b)


def _matmul(a, b):
    """``matmul`` of two checked operands of at least two dimensions each."""
    xp = _xp(a)
    # The device's product: BLAS / cuBLAS, or a GEMM that a CUDA graph can capture.
    product = backend.kernel("matmul", a.device)

    def matmul_backward(g):
        ga = product(g, xp.swapaxes(b.data, -1, -2)) if a.requires_grad else None
        gb = product(xp.swapaxes(a.data, -1, -2), g) if b.requires_grad else None
        return (None if ga is None else unbroadcast(ga, a.shape),
                None if gb is None else unbroadcast(gb, b.shape))
    return _record(product(a.data, b.data), (a, b), matmul_backward, "matmul")


def linear(x, weight, bias=None):
    """x @ weight.T + bias, weight shaped (out_features, in_features)."""
    _same_device("linear", x, weight, bias)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got "
                         f"shape {weight.shape}")
    if x.ndim == 0:
        raise ValueError("linear: the input must have a feature axis, got a 0-d tensor")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but "
                         f"weight expects {weight.shape[1]} (weight shape {weight.shape})")
    _check_bias("linear", bias, weight.shape[0])
    # The device's product: BLAS / cuBLAS, or a GEMM that a CUDA graph can capture.
    product = backend.kernel("matmul", x.device)
    y = product(x.data, weight.data.T)
    if bias is not None:
        y += bias.data

    def linear_backward(g):
        g2 = g.reshape(-1, g.shape[-1])
        gx = product(g, weight.data)
        gw = product(g2.T, x.data.reshape(-1, x.shape[-1]))
        gb = g2.sum(axis=0) if bias is not None else None
        return gx, gw, gb
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return _record(y, inputs, linear_backward)
