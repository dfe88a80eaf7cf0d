"""What every op family shares: recording an op's output and backward in the graph,
the array module, axis checks, broadcasting and promotion of
operands, and the dtype cast that promotion uses."""
import numpy as np

from .. import backend
from ..creation import constant_like
from ..dtypes import is_number_like, scalar_result_dtype
from ..tensor import Node, Tensor, is_grad_enabled
from ..utils import is_int


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


def _axis(axis, ndim, op):
    """One ``dim`` as an index in [0, ndim), or an error as torch's: IndexError when
    out of range. A 0-d tensor takes dim 0 or -1 (torch's rule), given back as 0."""
    if not is_int(axis):
        raise TypeError(f"{op}: dim must be an int, got {axis!r}")
    span = ndim or 1
    if not -span <= axis < span:
        raise IndexError(f"{op}: dim {axis} is out of range for a tensor of {ndim} "
                         f"dimensions (expected a dim in [{-span}, {span - 1}])")
    return int(axis) % span


def _dims(dim, ndim, op):
    """``dim`` (None, an int or a sequence of ints) as a tuple of axes in [0, ndim);
    None means all. Out of range is an IndexError and a repeated dim a RuntimeError, as
    torch; a 0-d tensor takes dim 0 or -1 and reduces over nothing."""
    if dim is None:
        return tuple(range(ndim))
    if not is_int(dim) and not isinstance(dim, (tuple, list)):
        raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
    axes = tuple(_axis(d, ndim, op) for d in ((dim,) if is_int(dim) else dim))
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"{op}: dim {dim!r} names an axis more than once")
    return axes if ndim else ()


def _dim_alias(op, dim, axis, keepdim=False, keepdims=None):
    """Resolve torch's ``dim``/``keepdim`` and NumPy's aliases ``axis``/``keepdims`` into
    one (dim, keepdim) pair: the one place every op that takes a dim does this."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: got dim={dim!r} and its alias axis={axis!r}; give one")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _as_float(x):
    """``x`` as a floating tensor for a float-valued op (exp, log, sin, ...): integer and
    bool tensors become float32, as torch's default dtype; float tensors stay."""
    return x if x.dtype.kind == "f" else cast(x, np.float32)




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
    tensor when it is of a higher kind (see ``dtypes.scalar_result_dtype``); an array
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
