"""Elementwise ops and the matrix product: ``+ - * / ** // %``, ``neg``, ``abs``,
``sign``, ``exp``/``log`` and their base-2 and base-10 forms, ``sqrt``/``rsqrt``,
``sin``/``cos``, ``erf``, ``maximum``/``minimum``, ``clamp``, ``where``, ``isnan``/
``isinf``/``isfinite``, ``matmul`` and ``linear``."""
import math

import numpy as np

from .. import backend
from ..backend import array_module as _array_module
from ..dtypes import is_scalar
from ..tensor import Tensor
from ..utils import unwrap
from ._core import (_as_float, _check_bias, _operands, _promoted, _record, _same_device, _xp,
                    cast, unbroadcast)
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

    Gradients as torch's: in x, 0 wherever the exponent is 0 (x ** 0 is constant,
    even at x = 0, +-inf or NaN); in the exponent, x ** e * log(x), except 0 where
    x = 0 and e >= 0, so NaN where x < 0 or NaN, and -inf for 0 ** negative.
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
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 is inf, as torch, silently
        y = x.data ** exponent.data

    def pow_tensor_backward(g):
        xp = _xp(x)
        gx = ge = None
        e = exponent.data
        with np.errstate(divide="ignore", invalid="ignore"):
            if x.requires_grad:
                gx = unbroadcast(xp.where(e == 0, 0, g * e * x.data ** (e - 1)).astype(g.dtype),
                                 x.shape)
            if exponent.requires_grad:
                exact_zero = (x.data == 0) & (e >= 0)
                ge = unbroadcast(g * xp.where(exact_zero, 0, y * xp.log(x.data)), exponent.shape)
        return gx, ge
    return _record(y, (x, exponent), pow_tensor_backward)


def _unary(name, x, forward, derivative):
    """A float-valued elementwise op: integer and bool input becomes float32 first (as
    torch); ``derivative(x, y)`` is the local derivative from the input and output."""
    x = _as_float(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = forward(x.data)

    def unary_backward(g):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return (g * derivative(x.data, y),)
    return _record(y, (x,), unary_backward, name)


def exp(x):
    return _unary("exp", x, _xp(x).exp, lambda x, y: y)


def exp2(x):
    return _unary("exp2", x, _xp(x).exp2, lambda x, y: y * math.log(2))


def log(x):
    return _unary("log", x, _xp(x).log, lambda x, y: 1 / x)


def log2(x):
    return _unary("log2", x, _xp(x).log2, lambda x, y: 1 / (x * math.log(2)))


def log10(x):
    return _unary("log10", x, _xp(x).log10, lambda x, y: 1 / (x * math.log(10)))


def sin(x):
    return _unary("sin", x, _xp(x).sin, lambda x, y: _array_module(x).cos(x))


def cos(x):
    return _unary("cos", x, _xp(x).cos, lambda x, y: -_array_module(x).sin(x))


def sqrt(x):
    """Square root; its gradient at 0 is inf, as torch."""
    return _unary("sqrt", x, _xp(x).sqrt, lambda x, y: 0.5 / y)


def _sqrt_zero_gradient_at_zero(x):
    """sqrt whose gradient is 0 where the root is 0: the last step of torch's norm and
    std, whose gradients torch defines as 0 there (not inf * 0 = NaN)."""
    def derivative(x, y):
        return _array_module(y).where(y == 0, 0, 0.5 / y).astype(y.dtype, copy=False)
    return _unary("sqrt", x, _xp(x).sqrt, derivative)


def rsqrt(x):
    """1 / sqrt(x)."""
    return _unary("rsqrt", x, lambda a: 1 / _array_module(a).sqrt(a), lambda x, y: -0.5 * y ** 3)


def erf(x):
    """The error function, accurate to about 1e-15 on both devices (no SciPy needed)."""
    return _unary("erf", x, _erf, lambda x, y: _TWO_OVER_SQRT_PI * _array_module(x).exp(-x * x))


_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)
# erf below 0.5: its Taylor series 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), whose
# 14th term is below 1e-17 there.
_ERF_TAYLOR = [_TWO_OVER_SQRT_PI * (-1) ** n / (math.factorial(n) * (2 * n + 1))
               for n in range(14)]
# erf above: 1 - erfc, erfc(z) = t exp(-z^2 + h(u)) with t = 2 / (2 + z) (Numerical
# Recipes' change of variable, which makes h smooth), u = t mapped onto [-1, 1] for z in
# [0, 6], and h a Chebyshev series interpolated from math.erfc; beyond 6, erf is 1.
_ERF_TOP = 6.0
_ERF_T0 = 2 / (2 + _ERF_TOP)


def _erfc_exponent(u):
    t = _ERF_T0 + (u + 1) / 2 * (1 - _ERF_T0)
    z = 2 / t - 2
    return np.array([math.log(math.erfc(a) / b) + a * a for a, b in zip(z, t)])


_ERFC_CHEBYSHEV = np.polynomial.chebyshev.chebinterpolate(_erfc_exponent, 22).tolist()


def _erf(x):
    """erf of a float array, within 1e-15 of math.erf on both devices (no SciPy)."""
    xp = _array_module(x)
    a = xp.abs(x).astype(np.float64, copy=False)
    small = a < 0.5
    s = xp.where(small, a, 0)
    s2 = s * s
    series = xp.full_like(s, _ERF_TAYLOR[-1])
    for c in _ERF_TAYLOR[-2::-1]:
        series = series * s2 + c
    z = xp.minimum(xp.where(small | xp.isnan(a), 1.0, a), _ERF_TOP)
    t = 2 / (2 + z)
    u = 2 * (t - _ERF_T0) / (1 - _ERF_T0) - 1
    b1, b2 = xp.zeros_like(u), xp.zeros_like(u)
    for c in _ERFC_CHEBYSHEV[:0:-1]:  # Clenshaw's recurrence
        b1, b2 = 2 * u * b1 - b2 + c, b1
    exponent = u * b1 - b2 + _ERFC_CHEBYSHEV[0]
    y = xp.where(small, s * series, xp.where(a >= _ERF_TOP, 1.0, 1 - t * xp.exp(exponent - z * z)))
    return xp.where(xp.isnan(x), x, xp.copysign(y, x)).astype(x.dtype, copy=False)


def abs(x):
    """|x|; its derivative sign(x) is 0 at 0 and at NaN, as torch."""
    xp = _xp(x)

    def abs_backward(g):
        return (g * _sign(x.data),)
    return _record(xp.abs(x.data), (x,), abs_backward)


def _sign(data):
    """-1, 0 or 1 in ``data``'s dtype; 0 at NaN and at -0.0, as torch (NumPy: NaN, -0.0)."""
    return (data > 0).astype(data.dtype) - (data < 0).astype(data.dtype)


def sign(x):
    """-1, 0 or 1 by the sign of x (0 at NaN, as torch); its gradient is 0, as torch."""
    xp = _xp(x)

    def sign_backward(g):
        return (xp.zeros_like(g),)
    return _record(_sign(x.data), (x,), sign_backward)


def isnan(x):
    return Tensor(_xp(x).isnan(x.data))


def isinf(x):
    return Tensor(_xp(x).isinf(x.data))


def isfinite(x):
    return Tensor(_xp(x).isfinite(x.data))


def _extreme_of_two(a, b, op, wins):
    a, b = _operands(a, b, op)
    xp = _xp(a)

    def extreme_backward(g):
        # torch: a tie gives each operand half the gradient
        share = xp.where(a.data == b.data, g / 2, xp.where(wins(a.data, b.data), g, 0))
        return unbroadcast(share, a.shape), unbroadcast(g - share, b.shape)
    return _record(getattr(xp, op)(a.data, b.data), (a, b), extreme_backward, op)


def maximum(a, b):
    """Elementwise maximum (NaN wins); at a tie each operand gets half the gradient."""
    return _extreme_of_two(a, b, "maximum", lambda p, q: p > q)


def minimum(a, b):
    """Elementwise minimum (NaN wins); at a tie each operand gets half the gradient."""
    return _extreme_of_two(a, b, "minimum", lambda p, q: p < q)


def clamp(x, min=None, max=None):
    """x limited to [min, max] (either may be left out; each a number or a tensor that
    broadcasts), as torch.clamp: min(max(x, min), max), so max wins where min > max.
    The gradient goes to x inside [min, max], else to the bound that was taken."""
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both (both are None)")
    lo = hi = None
    if min is not None:
        x, lo = _operands(x, min, "clamp")
    if max is not None:
        x, hi = _operands(x, max, "clamp")
        if lo is not None:
            _, lo = _operands(x, lo, "clamp")
    xp = _xp(x)
    y = x.data
    if lo is not None:
        y = xp.maximum(y, lo.data)
    if hi is not None:
        y = xp.minimum(y, hi.data)
    shape = y.shape

    def clamp_backward(g):
        inside = xp.ones(shape, dtype=bool)
        grads = []
        if lo is not None:
            inside &= x.data >= lo.data
            took_lo = x.data < lo.data
            if hi is not None:
                took_lo &= lo.data < hi.data
            grads.append(unbroadcast(xp.where(took_lo, g, 0), lo.shape))
        if hi is not None:
            inside &= x.data <= hi.data
            took_hi = x.data > hi.data
            if lo is not None:
                took_hi |= hi.data < lo.data
            grads.append(unbroadcast(xp.where(took_hi, g, 0), hi.shape))
        return (unbroadcast(xp.where(inside, g, 0), x.shape), *grads)
    inputs = (x,) + tuple(t for t in (lo, hi) if t is not None)
    return _record(y, inputs, clamp_backward)


clip = clamp


def where(condition, input, other):
    """``input`` where ``condition`` holds, else ``other`` (torch.where); either may be
    a number. Each gets the gradient where it was chosen."""
    a, b = _operands(input, other, "where")
    cond = unwrap(condition)
    if hasattr(cond, "shape") and backend.device_of(cond) != a.device:
        raise ValueError(f"where: condition is on {backend.device_of(cond)}, the values on "
                         f"{a.device}; move them to one device with .to()")
    xp = _xp(a)
    cond = xp.asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    try:
        shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {a.shape} and {b.shape} cannot be "
                         f"broadcast together") from None

    def where_backward(g):
        zero = xp.zeros((), dtype=g.dtype)
        return (unbroadcast(xp.where(cond, g, zero), a.shape),
                unbroadcast(xp.where(cond, zero, g), b.shape))
    y = xp.where(cond, a.data, b.data)
    return _record(xp.broadcast_to(y, shape) if y.shape != shape else y, (a, b), where_backward)


def _integer_operands(a, b, op):
    a, b = _operands(a, b, op)
    if a.dtype.kind in "biu" and b.dtype.kind in "biu" and bool((b.data == 0).any()):
        raise ZeroDivisionError(f"{op}: integer division by zero")
    return a, b


def floor_divide(a, b):
    """a // b rounded toward minus infinity (Python's and torch's rule). Not
    differentiable (as torch): the result requires no grad."""
    a, b = _integer_operands(a, b, "floor_divide")
    return Tensor(_xp(a).floor_divide(a.data, b.data))


def remainder(a, b):
    """a % b with the sign of the divisor (Python's and torch's rule). Gradients as
    torch: 1 for a, -floor(a / b) for b."""
    a, b = _integer_operands(a, b, "remainder")
    xp = _xp(a)

    def remainder_backward(g):
        return (unbroadcast(g, a.shape),
                unbroadcast(-g * xp.floor_divide(a.data, b.data), b.shape))
    return _record(xp.remainder(a.data, b.data), (a, b), remainder_backward)


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
