"""What every op family shares: recording an op's output and backward in the graph,
the array module, argument checks (ints, axes, pairs), broadcasting and promotion of
operands, and the dtype cast that promotion uses."""
import numpy as np

from .. import backend
from ..tensor import (Node, Tensor, constant_like, is_grad_enabled, is_number_like,
                      scalar_result_dtype)


def _record(data, inputs, backward, name=None):
    """Wrap ``data`` as the op's output and, if a gradient is wanted, record the node."""
    if isinstance(data, np.generic):  # NumPy reductions return scalars, not 0-d arrays
        data = np.asarray(data)
    out = Tensor(data)
    if is_grad_enabled() and any(t.requires_grad for t in inputs):
        out.requires_grad = True
        out.node = Node(inputs, backward, name or backward.__qualname__.split(".")[0])
    return out


def _xp(t):
    return backend.array_module(t.data)



def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _axis(axis, ndim, op):
    """``axis`` as an index in [0, ndim), or a clear error."""
    if not _is_int(axis):
        raise TypeError(f"{op}: axes must be ints, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for {ndim} dimensions")
    return int(axis) % ndim



def _pair(value, what, op, minimum):
    """An int or a pair of ints, each at least ``minimum`` -> (a, b); else a clear error."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_is_int(v) for v in pair):
        raise TypeError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {what} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def unbroadcast(grad, shape):
    """Sum a broadcast gradient back down to an operand's ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


def _same_device(op, *tensors):
    """Raise a clear error when an op's tensors live on different devices."""
    devices = {t.device for t in tensors if t is not None}
    if len(devices) > 1:
        named = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in tensors if t is not None)
        raise ValueError(f"{op}: tensors are on different devices ({named}); "
                         f"move them to one device with .to()")


def _promoted(x, scalar):
    """``x`` cast to its dtype beside the number ``scalar`` (torch's rule: an int tensor
    times 0.5 is a float32 tensor); ``x`` itself when that is its own dtype."""
    dtype = scalar_result_dtype(x.dtype, scalar)
    return x if dtype == x.dtype else cast(x, dtype)


def _operands(a, b, op, broadcast=True):
    """Two Tensors on one device (whose shapes broadcast), or a clear error.

    A number (or 0-d array) beside a tensor takes the tensor's dtype, or promotes the
    tensor when it is of a higher kind (see ``tensor.scalar_result_dtype``); an array
    keeps its own.
    """
    if not isinstance(a, Tensor):
        if is_number_like(a):
            b = _promoted(b, a)
        a = constant_like(a, b)
    if not isinstance(b, Tensor):
        if is_number_like(b):
            a = _promoted(a, b)
        b = constant_like(b, a)
    _same_device(op, a, b)
    if not broadcast:
        return a, b
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast "
                         f"together") from None
    return a, b



def cast(x, dtype):
    """x converted to ``dtype`` (no copy if it is already); the gradient is converted
    back. A non-float result is a constant: it requires no grad, as in torch."""
    source = x.dtype
    y = x.data.astype(dtype, copy=False)
    if y.dtype.kind != "f":
        return Tensor(y)

    def cast_backward(g):
        return (g.astype(source, copy=False),)
    return _record(y, (x,), cast_backward)


def _check_bias(op, bias, out_features):
    if bias is not None and bias.shape != (out_features,):
        raise ValueError(f"{op}: bias must have shape ({out_features},), one per output, "
                         f"got {bias.shape}")
