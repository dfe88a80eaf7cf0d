"""Activations: ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``softmax``,
``log_softmax``; the first three from the device's kernel table."""
from .. import backend
from ._core import _dim_alias, _dims, _record, _xp


def leaky_relu(x, negative_slope=0.01):
    xp = _xp(x)
    slope = xp.where(x.data > 0, 1, negative_slope).astype(x.dtype)

    def leaky_relu_backward(g):
        return (g * slope,)
    return _record(x.data * slope, (x,), leaky_relu_backward)


def _activation(name, x):
    """An activation whose derivative the kernel table takes from its output."""
    forward, backward = backend.kernels(x.device, "activation_forward",
                                        "activation_backward")
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
