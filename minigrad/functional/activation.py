"""Activations: ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``softmax``,
``log_softmax`` (the first three from the device's kernel table), and torch's other
pointwise ones: ``gelu``, ``silu``, ``elu``, ``selu``, ``softplus``, ``mish``,
``hardtanh``, ``relu6``, ``hardsigmoid``, ``hardswish``, ``logsigmoid``, ``prelu``."""
import numpy as np

from .. import backend
from ._core import _dim_alias, _dims, _record, _xp, unbroadcast
from .elementwise import _erf


def leaky_relu(x, negative_slope=0.01):
    xp = _xp(x)
    slope = xp.where(x.data > 0, 1, negative_slope).astype(x.dtype)

    def leaky_relu_backward(g):
        return (g * slope,)
    return _record(x.data * slope, (x,), leaky_relu_backward)


def _activation(name, x):
    """An activation whose derivative the kernel table takes from its output."""
    forward, backward = backend.kernels("activation_forward",
                                        "activation_backward", device=x.device)
    y = forward(name, x.data)

    def activation_backward(g):
        return (backward(name, g, y),)
    return _record(y, (x,), activation_backward, name)


def relu(x):
    """max(x, 0); NaN stays NaN."""
    return _activation("relu", x)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow at +-1e4."""
    return _activation("sigmoid", x)


def tanh(x):
    """Hyperbolic tangent."""
    return _activation("tanh", x)


def softmax(x, dim=-1, *, axis=None):
    axis = _softmax_axis("softmax", x, dim, axis)
    xp = _xp(x)
    e = xp.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)

    def softmax_backward(g):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)
    return _record(y, (x,), softmax_backward)


def log_softmax(x, dim=-1, *, axis=None):
    axis = _softmax_axis("log_softmax", x, dim, axis)
    xp = _xp(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def log_softmax_backward(g):
        return (g - xp.exp(y) * g.sum(axis=axis, keepdims=True),)
    return _record(y, (x,), log_softmax_backward)


def _softmax_axis(op, x, dim, axis):
    """torch's ``dim`` (``axis`` its alias) checked: IndexError out of range; a 0-d
    tensor takes dim 0 or -1 (and reduces over nothing)."""
    dim, _ = _dim_alias(op, None if axis is not None else dim, axis)
    return _dims(dim, x.ndim, op)


# --------------------------------------------------------------- more activations
# Each takes torch.nn.functional's name, arguments and defaults; ``inplace`` is
# accepted (ported code passes it) and ignored: the result is always a new tensor,
# which is what code that uses the return value sees from torch too. Derivatives
# at kinks follow torch's backward formulas.

def _floating(x, op):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {x.dtype}")


def _pointwise(x, op, forward, derivative):
    """An elementwise op: ``forward(xp, data)`` and ``derivative(xp, data, y)``,
    the local derivative dy/dx, computed only when the gradient is asked for."""
    _floating(x, op)
    xp = _xp(x)
    y = forward(xp, x.data)

    def backward(g):
        return (g * derivative(xp, x.data, y),)
    backward.__qualname__ = f"{op}_backward"
    return _record(y, (x,), backward, op)


def _sigmoid_array(xp, x):
    """1 / (1 + exp(-x)) without overflow: exp only ever of -|x|."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _softplus_array(xp, x):
    """log(1 + exp(x)) without overflow."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


_SQRT_2_OVER_PI = 0.7978845608028654
_INV_SQRT_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_GELU_CUBIC = 0.044715


def gelu(x, approximate="none"):
    """x * Phi(x) with Phi the standard normal CDF; ``approximate="tanh"`` uses
    0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))), as torch."""
    if approximate == "none":
        def forward(xp, v):
            return v * (0.5 * (1 + _erf(v * _INV_SQRT_2)))

        def derivative(xp, v, y):
            cdf = 0.5 * (1 + _erf(v * _INV_SQRT_2))
            return cdf + v * (_INV_SQRT_2PI * xp.exp(-0.5 * v * v))
    elif approximate == "tanh":
        def inner(xp, v):
            return xp.tanh(_SQRT_2_OVER_PI * (v + _GELU_CUBIC * v * v * v))

        def forward(xp, v):
            return 0.5 * v * (1 + inner(xp, v))

        def derivative(xp, v, y):
            t = inner(xp, v)
            return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * _SQRT_2_OVER_PI * \
                (1 + 3 * _GELU_CUBIC * v * v)
    else:
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _pointwise(x, "gelu", forward, derivative)


def silu(x, inplace=False):
    """x * sigmoid(x) (also called swish)."""
    def derivative(xp, v, y):
        s = _sigmoid_array(xp, v)
        return s * (1 + v * (1 - s))
    return _pointwise(x, "silu", lambda xp, v: v * _sigmoid_array(xp, v), derivative)


def _check_number(value, what, op):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TypeError(f"{op}: {what} must be a real number, got {value!r}")
    return float(value)


def elu(x, alpha=1.0, inplace=False):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    alpha = _check_number(alpha, "alpha", "elu")
    return _elu(x, alpha, 1.0, "elu")


def _elu(x, alpha, scale, op):
    def forward(xp, v):
        return scale * xp.where(v > 0, v, alpha * xp.expm1(xp.minimum(v, 0)))

    def derivative(xp, v, y):
        return scale * xp.where(v > 0, 1, alpha * xp.exp(xp.minimum(v, 0)))
    return _pointwise(x, op, forward, derivative)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x, inplace=False):
    """scale * elu(x, alpha) with the self-normalising constants of torch.selu."""
    return _elu(x, _SELU_ALPHA, _SELU_SCALE, "selu")


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    beta = _check_number(beta, "beta", "softplus")
    threshold = _check_number(threshold, "threshold", "softplus")
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")

    def forward(xp, v):
        z = v * beta
        return xp.where(z > threshold, v, _softplus_array(xp, z) / beta)

    def derivative(xp, v, y):
        z = v * beta
        return xp.where(z > threshold, 1, _sigmoid_array(xp, z))
    return _pointwise(x, "softplus", forward, derivative)


def mish(x, inplace=False):
    """x * tanh(softplus(x))."""
    def derivative(xp, v, y):
        t = xp.tanh(_softplus_array(xp, v))
        return t + v * _sigmoid_array(xp, v) * (1 - t * t)
    return _pointwise(x, "mish", lambda xp, v: v * xp.tanh(_softplus_array(xp, v)),
                      derivative)


def hardtanh(x, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val]; the gradient is 0 at and beyond the bounds."""
    min_val = _check_number(min_val, "min_val", "hardtanh")
    max_val = _check_number(max_val, "max_val", "hardtanh")
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return _hardtanh(x, min_val, max_val, "hardtanh")


def _hardtanh(x, low, high, op):
    return _pointwise(x, op, lambda xp, v: xp.clip(v, low, high).astype(v.dtype, copy=False),
                      lambda xp, v, y: ((v > low) & (v < high)).astype(v.dtype))


def relu6(x, inplace=False):
    """min(max(x, 0), 6)."""
    return _hardtanh(x, 0.0, 6.0, "relu6")


def hardsigmoid(x, inplace=False):
    """relu6(x + 3) / 6; the gradient is 1/6 strictly inside (-3, 3)."""
    return _pointwise(x, "hardsigmoid",
                      lambda xp, v: (xp.clip(v + 3, 0, 6) / 6).astype(v.dtype, copy=False),
                      lambda xp, v, y: xp.where((v > -3) & (v < 3), _SIXTH, 0).astype(v.dtype))


# torch's hardsigmoid backward uses 1/6 rounded to float32 (1.0f / 6.0f) at every precision.
_SIXTH = float(np.float32(1) / np.float32(6))


def hardswish(x, inplace=False):
    """x * relu6(x + 3) / 6."""
    def derivative(xp, v, y):
        return xp.where(v <= -3, 0, xp.where(v < 3, v / 3 + 0.5, 1)).astype(v.dtype)
    return _pointwise(x, "hardswish",
                      lambda xp, v: (v * xp.clip(v + 3, 0, 6) / 6).astype(v.dtype, copy=False),
                      derivative)


def logsigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return _pointwise(x, "logsigmoid", lambda xp, v: -_softplus_array(xp, -v),
                      lambda xp, v, y: _sigmoid_array(xp, -v))


def prelu(x, weight):
    """x where x > 0, else weight * x; ``weight`` has one slope (shape (1,)) or one
    per channel (shape (C,), the channels on axis 1, or axis 0 of a 1-D input)."""
    _floating(x, "prelu")
    if weight.ndim != 1:
        raise ValueError(f"prelu: weight must be 1-D (1 or C slopes), got shape {weight.shape}")
    channel_axis = 1 if x.ndim >= 2 else 0
    channels = x.shape[channel_axis] if x.ndim else 1
    if weight.shape[0] not in (1, channels):
        raise ValueError(f"prelu: weight has {weight.shape[0]} slopes but the input (shape "
                         f"{x.shape}) has {channels} channels on axis {channel_axis}")
    xp = _xp(x)
    shape = [1] * x.ndim
    if x.ndim:
        shape[channel_axis] = weight.shape[0]
    w = weight.data.reshape(shape)
    positive = x.data > 0
    y = xp.where(positive, x.data, w * x.data)

    def prelu_backward(g):
        gx = g * xp.where(positive, 1, w).astype(g.dtype, copy=False)
        gw = unbroadcast(xp.where(positive, 0, g * x.data), tuple(shape)).reshape(weight.shape)
        return gx, gw
    return _record(y, (x, weight), prelu_backward)
