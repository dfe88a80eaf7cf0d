"""Differentiable ops: each computes its forward array and, beside it, its backward.

Every op follows one pattern::

    def op(x):
        y = <forward on x.data>
        def backward(gy):
            return (<gradient for x>,)
        return _record(y, (x,), backward)

``backward`` receives the output's gradient array and returns one gradient array (or
None) per input. Device-specific hot loops (convolution, pooling, fused losses) come
from the device's kernel table (``backend.kernel``; an op whose backward reads its
forward's cache takes both kernels from one table when the forward runs,
``backend.kernels``); everything else is array-module code that runs unchanged on
NumPy and CuPy. Names follow ``torch.nn.functional``.
"""
import builtins
import math

import numpy as np

from . import backend
from . import random as mg_random
from .tensor import (Node, Tensor, constant_like, is_grad_enabled, is_number_like, is_scalar,
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


# ---------------------------------------------------------------- arithmetic
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


# ---------------------------------------------------------------- reductions
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


def _expand_reduced(g, shape, axes, keepdims):
    """Give a reduced gradient its reduced axes back so it broadcasts to ``shape``."""
    if not keepdims:
        g = g.reshape([1 if i in axes else n for i, n in enumerate(shape)])
    return g


def sum(x, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    xp = _xp(x)

    def sum_backward(g):
        return (xp.broadcast_to(_expand_reduced(g, x.shape, axes, keepdims), x.shape),)
    return _record(x.data.sum(axis=axes, keepdims=keepdims), (x,), sum_backward)


def mean(x, axis=None, keepdims=False):
    axes = _axes(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    xp = _xp(x)

    def mean_backward(g):
        g = _expand_reduced(g, x.shape, axes, keepdims) / count
        return (xp.broadcast_to(g, x.shape).astype(x.dtype, copy=False),)
    return _record(x.data.mean(axis=axes, keepdims=keepdims), (x,), mean_backward)


def max(x, axis=None, keepdims=False):
    """Maximum over axes; ties share the gradient equally (as torch.amax)."""
    axes = _axes(axis, x.ndim)
    y = x.data.max(axis=axes, keepdims=True)

    def max_backward(g):
        mask = (x.data == y).astype(x.dtype)
        mask /= mask.sum(axis=axes, keepdims=True)
        return (mask * _expand_reduced(g, x.shape, axes, keepdims),)
    out = y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return _record(out, (x,), max_backward)


# ---------------------------------------------------------------- shapes
def reshape(x, shape):
    try:
        y = x.data.reshape(shape)
    except ValueError:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into {tuple(shape)}") from None

    def reshape_backward(g):
        return (g.reshape(x.shape),)
    return _record(y, (x,), reshape_backward)


def flatten(x, start_dim=1):
    """Merge every axis from ``start_dim`` on into one (torch.flatten).

    ``start_dim`` must name an axis of ``x`` (a 0-d tensor flattens to shape (1,)).
    """
    if x.ndim == 0 and start_dim in (0, -1):
        return reshape(x, (1,))
    if not -x.ndim <= start_dim < x.ndim:
        raise ValueError(f"flatten: start_dim {start_dim} is out of range for a tensor of "
                         f"shape {x.shape} ({x.ndim} dimensions)")
    start_dim %= x.ndim
    return reshape(x, x.shape[:start_dim] + (math.prod(x.shape[start_dim:]),))


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _axis(axis, ndim, op):
    """``axis`` as an index in [0, ndim), or a clear error."""
    if not _is_int(axis):
        raise TypeError(f"{op}: axes must be ints, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for {ndim} dimensions")
    return int(axis) % ndim


def transpose(x, axes=None):
    """The axes permuted by ``axes`` (NumPy's transpose), or reversed when None.

    ``axes`` must be a permutation of the ``x.ndim`` axes; negative ones count from
    the end. The gradient goes back through the inverse permutation.
    """
    if axes is not None:
        given = tuple(axes)
        axes = tuple(int(a) % x.ndim for a in given if _is_int(a) and -x.ndim <= a < x.ndim)
        if len(given) != x.ndim or sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {given} are not a permutation of the "
                             f"{x.ndim} axes of a tensor of shape {x.shape}")
    inverse = None if axes is None else tuple(np.argsort(axes))

    def transpose_backward(g):
        return (g.transpose(inverse),)
    return _record(x.data.transpose(axes), (x,), transpose_backward)


def swapaxes(x, axis1, axis2):
    """``x`` with two axes exchanged (torch.transpose(x, dim0, dim1))."""
    axes = list(range(x.ndim))
    i, j = _axis(axis1, x.ndim, "swapaxes"), _axis(axis2, x.ndim, "swapaxes")
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(x, axes)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)

    def getitem_backward(g):
        full = _xp(x).zeros(x.shape, dtype=g.dtype)
        backend.scatter_add(full, index, g)  # repeated indices add up
        return (full,)
    return _record(x.data[index], (x,), getitem_backward)


# ---------------------------------------------------------------- activations
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


def softmax(x, axis=-1):
    xp = _xp(x)
    e = xp.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)

    def softmax_backward(g):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)
    return _record(y, (x,), softmax_backward)


def log_softmax(x, axis=-1):
    xp = _xp(x)
    shifted = x.data - x.data.max(axis=axis, keepdims=True)
    y = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))

    def log_softmax_backward(g):
        return (g - xp.exp(y) * g.sum(axis=axis, keepdims=True),)
    return _record(y, (x,), log_softmax_backward)


# ---------------------------------------------------------------- layers' ops
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


def _check_bias(op, bias, out_features):
    if bias is not None and bias.shape != (out_features,):
        raise ValueError(f"{op}: bias must have shape ({out_features},), one per output, "
                         f"got {bias.shape}")


def _check_nchw(x, what):
    if x.ndim != 4:
        raise ValueError(f"{what}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def _conv_padding(padding, kernel, stride):
    """conv2d's ``padding`` -> ((ph, pw), (crop_h, crop_w)) for the symmetric kernels.

    ``"valid"`` is no padding. ``"same"`` (stride 1 only, as torch) keeps the spatial
    size: an odd kernel k pads (k-1)/2 on each side; an even one needs one more row
    (column) at the bottom (right) than at the top (left), as torch pads it, which
    symmetric padding of k/2 and dropping the output's first row (column) gives.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding != "same":
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', "
                             f"got {padding!r}")
        if stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1 (as torch), got "
                             f"stride {stride}")
        return (kernel[0] // 2, kernel[1] // 2), (1 - kernel[0] % 2, 1 - kernel[1] % 2)
    return _pair(padding, "padding", "conv2d", 0), (0, 0)


def conv2d(x, weight, bias=None, stride=1, padding=0, activation=None):
    """2-D cross-correlation of NCHW ``x`` with OIHW ``weight`` (torch.nn.functional.conv2d).

    ``padding`` is an int, a pair, ``"valid"`` (none) or ``"same"`` (output as large
    as the input; stride 1). ``activation`` ("relu", "tanh", "sigmoid" or None) is
    applied by the convolution's own kernel, in the pass that adds the bias: the same
    numbers as ``relu(conv2d(...))`` without a pass over the output (and one over its
    gradient) of its own.
    """
    _check_nchw(x, "conv2d")
    _same_device("conv2d", x, weight, bias)
    if weight.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels, kH, kW), "
                         f"got shape {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but "
                         f"weight expects {weight.shape[1]} (weight shape {weight.shape})")
    kh, kw = weight.shape[2:]
    if kh < 1 or kw < 1 or weight.shape[0] < 1:
        raise ValueError(f"conv2d: weight of shape {weight.shape} is empty (kernel size and "
                         f"out_channels must be at least 1)")
    _check_bias("conv2d", bias, weight.shape[0])
    stride = _pair(stride, "stride", "conv2d", 1)
    padding, crop = _conv_padding(padding, (kh, kw), stride)
    if x.shape[2] + 2 * padding[0] < kh or x.shape[3] + 2 * padding[1] < kw:
        raise ValueError(f"conv2d: input of spatial size {x.shape[2:]} with padding {padding} "
                         f"is smaller than the kernel ({kh}, {kw})")
    forward, backward = backend.kernels(x.device, "conv2d_forward", "conv2d_backward")
    y, cache = forward(x.data, weight.data, None if bias is None else bias.data, stride,
                       padding, activation)

    def conv2d_backward(g):
        gx, gw, gb = backward(g, cache, x.requires_grad)
        return gx, gw, gb
    inputs = (x, weight) if bias is None else (x, weight, bias)
    out = _record(y, inputs, conv2d_backward)
    if crop != (0, 0):  # "same" with an even kernel: see _conv_padding
        out = getitem(out, (slice(None), slice(None), slice(crop[0], None),
                            slice(crop[1], None)))
    return out


def _pool(kind, x, kernel_size, stride, padding):
    op = f"{kind}_pool2d"
    _check_nchw(x, op)
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{kind}_pool2d: padding {padding} must be at most half the "
                         f"kernel size {kernel}")
    if x.shape[2] + 2 * padding[0] < kernel[0] or x.shape[3] + 2 * padding[1] < kernel[1]:
        raise ValueError(f"{kind}_pool2d: input of spatial size {x.shape[2:]} is smaller "
                         f"than the window {kernel}")
    forward, backward = backend.kernels(x.device, f"{kind}_pool2d_forward",
                                        f"{kind}_pool2d_backward")
    y, cache = forward(x.data, kernel, stride, padding)

    def pool2d_backward(g):
        return (backward(g, cache),)
    return _record(y, (x,), pool2d_backward, f"{kind}_pool2d")


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Window maxima over NCHW ``x``; stride defaults to the kernel size."""
    return _pool("max", x, kernel_size, stride, padding)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Window means over NCHW ``x`` (zero padding counts, as PyTorch's default)."""
    return _pool("avg", x, kernel_size, stride, padding)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    seed, offset = mg_random.take_offsets(x.size)
    mask = backend.kernel("dropout_mask", x.device)(x.shape, p, seed, offset, x.dtype)

    def dropout_backward(g):
        return (g * mask,)
    return _record(x.data * mask, (x,), dropout_backward)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise over every axis but the channel axis 1 (torch.nn.functional.batch_norm).

    In training the batch statistics are used and the running arrays updated in place
    (unbiased variance, as PyTorch); in evaluation the running statistics are used.
    """
    if bias is not None and weight is None:
        raise ValueError("batch_norm: a bias without a weight is not supported")
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected an input (N, C, ...) with a channel axis, "
                         f"got shape {x.shape}")
    xp = _xp(x)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = [1, x.shape[1]] + [1] * (x.ndim - 2)
    if training:
        count = math.prod(x.shape[a] for a in axes)  # values per channel
        if count < 2:  # no variance to estimate (torch refuses too)
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {x.shape}")
        mu = x.data.mean(axis=axes)
        var = x.data.var(axis=axes)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mu
            running_var *= 1 - momentum
            running_var += momentum * var * count / (count - 1)  # unbiased, as torch
    else:
        mu, var = running_mean, running_var
    inv_std = (1 / xp.sqrt(var + eps)).astype(x.dtype)
    x_hat = (x.data - mu.reshape(shape)) * inv_std.reshape(shape)
    gamma = weight.data.reshape(shape) if weight is not None else 1
    y = x_hat * gamma
    if bias is not None:
        y = y + bias.data.reshape(shape)

    def batch_norm_backward(g):
        gw = (g * x_hat).sum(axis=axes) if weight is not None else None
        gb = g.sum(axis=axes) if bias is not None else None
        g_hat = g * gamma
        if training:  # the batch statistics depend on x too
            g_hat = g_hat - g_hat.mean(axis=axes, keepdims=True) \
                - x_hat * (g_hat * x_hat).mean(axis=axes, keepdims=True)
        gx = g_hat * inv_std.reshape(shape)
        return (gx, gw, gb)[:len(inputs)]
    inputs = tuple(t for t in (x, weight, bias) if t is not None)
    return _record(y, inputs, batch_norm_backward)


# ---------------------------------------------------------------- losses
def _reduce(losses, reduction):
    if reduction == "mean":
        return mean(losses)
    if reduction == "sum":
        return sum(losses)
    if reduction == "none":
        return losses
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _class_labels(target, logits, loss):
    """Integer class labels as an array, checked against the logits' class count.

    On the CPU a label outside [0, classes) is a ValueError naming it. On a GPU it is
    not checked on the host, since reading the check back would wait for the GPU on
    every training step (and a CUDA graph capture cannot wait at all): the loss comes
    out NaN instead, on the device (the CUDA softmax cross-entropy kernel does it
    itself, :func:`_nan_for_bad_labels` for the others; CuPy's indexing would wrap the
    label round to another class), and a NaN loss stops ``fit`` at its next check.
    While ``backend.capturing()`` the CPU check is skipped too.
    """
    labels = target.data if isinstance(target, Tensor) else target
    xp = _xp(logits)
    labels = xp.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{loss}: class labels must be integers, got dtype {labels.dtype}")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"{loss}: {logits.shape[0]} rows of logits (shape {logits.shape}) "
                         f"but labels of shape {labels.shape}")
    n_classes = logits.shape[1]
    if logits.device == "cpu" and not backend.is_capturing():
        bad = (labels < 0) | (labels >= n_classes)
        if bad.any():
            label = int(labels[bad][0])
            raise ValueError(f"{loss}: label {label} is outside [0, {n_classes}) for "
                             f"logits with {n_classes} classes")
    return labels.astype(np.int64, copy=False)


def _nan_for_bad_labels(losses, labels, n_classes):
    """Per-sample ``losses`` (a Tensor) with NaN where a label lies outside
    [0, n_classes): how a GPU reports a bad label without a host check (see
    :func:`_class_labels`). The gradient passes through unchanged; the NaN loss is
    what stops training."""
    xp = _xp(losses)
    bad = (labels < 0) | (labels >= n_classes)
    # A Python float keeps the losses' own float dtype (NumPy's and CuPy's rule).
    poisoned = xp.where(bad, math.nan, losses.data)

    def nan_for_bad_labels_backward(g):
        return (g,)
    return _record(poisoned, (losses,), nan_for_bad_labels_backward)


def _checked_on_device(losses, labels, n_classes):
    """``losses`` from labels that :func:`_class_labels` left unchecked on a GPU, with
    NaN for the bad ones; on the CPU (checked already) ``losses`` itself."""
    if losses.device == "cpu":
        return losses
    return _nan_for_bad_labels(losses, labels, n_classes)


def _check_logits(logits, loss):
    if logits.ndim != 2:
        raise ValueError(f"{loss}: expected logits of shape (N, classes), got {logits.shape}")


def cross_entropy(logits, target, reduction="mean"):
    """Softmax cross-entropy on raw logits (torch.nn.CrossEntropyLoss).

    ``target`` holds integer class labels (N,), or class probabilities (N, C). A label
    outside [0, C) is a ValueError on the CPU and a NaN loss on a GPU, where checking
    it would wait for the device (see ``_class_labels``).
    """
    _check_logits(logits, "cross_entropy")
    if isinstance(target, Tensor) and target.dtype.kind == "f":
        if target.shape != logits.shape:
            raise ValueError(f"cross_entropy: probability targets of shape {target.shape} "
                             f"do not match logits {logits.shape}")
        return _reduce(-sum(target * log_softmax(logits, axis=1), axis=1), reduction)
    labels = _class_labels(target, logits, "cross_entropy")
    forward, backward = backend.kernels(logits.device, "softmax_cross_entropy_forward",
                                        "softmax_cross_entropy_backward")
    losses, cache = forward(logits.data, labels)

    def cross_entropy_backward(g):
        return (backward(g, cache),)
    return _reduce(_record(losses, (logits,), cross_entropy_backward), reduction)


def nll_loss(log_probs, target, reduction="mean"):
    """Negative log-likelihood of integer labels under log-probabilities (N, C).

    A label outside [0, C): a ValueError on the CPU, a NaN loss on a GPU.
    """
    _check_logits(log_probs, "nll_loss")
    labels = _class_labels(target, log_probs, "nll_loss")
    losses = -log_probs[_xp(log_probs).arange(labels.shape[0]), labels]
    return _reduce(_checked_on_device(losses, labels, log_probs.shape[1]), reduction)


def _regression_pair(prediction, target, loss):
    target = constant_like(target, prediction)
    if prediction.shape != target.shape:
        raise ValueError(f"{loss}: prediction shape {prediction.shape} does not match "
                         f"target shape {target.shape}")
    return prediction, target


def mse_loss(prediction, target, reduction="mean"):
    """Mean squared error (torch.nn.MSELoss)."""
    prediction, target = _regression_pair(prediction, target, "mse_loss")
    return _reduce((prediction - target) ** 2, reduction)


def l1_loss(prediction, target, reduction="mean"):
    """Mean absolute error (torch.nn.L1Loss)."""
    prediction, target = _regression_pair(prediction, target, "l1_loss")
    return _reduce(abs(prediction - target), reduction)


def huber_loss(prediction, target, reduction="mean", delta=1.0):
    """Quadratic within ``delta`` of the target, linear beyond (torch.nn.HuberLoss)."""
    prediction, target = _regression_pair(prediction, target, "huber_loss")
    xp = _xp(prediction)
    d = prediction.data - target.data
    small = xp.abs(d) <= delta
    losses = xp.where(small, 0.5 * d * d, delta * (xp.abs(d) - 0.5 * delta))

    def huber_backward(g):
        gd = g * xp.where(small, d, delta * xp.sign(d))
        return gd, -gd
    return _reduce(_record(losses, (prediction, target), huber_backward), reduction)


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """Logistic loss on raw scores (torch.nn.BCEWithLogitsLoss), stable at +-1e4."""
    logits, target = _regression_pair(logits, target, "binary_cross_entropy_with_logits")
    xp = _xp(logits)
    x, t = logits.data, target.data
    losses = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))

    def bce_backward(g):
        e = xp.exp(-xp.abs(x))
        p = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return g * (p - t), -g * x
    return _reduce(_record(losses, (logits, target), bce_backward), reduction)


def multi_margin_loss(logits, target, margin=1.0, reduction="mean"):
    """Multi-class hinge loss (torch.nn.MultiMarginLoss, p=1)::

        loss_n = sum_{i != y_n} max(0, margin - x[n, y_n] + x[n, i]) / C

    A label outside [0, C): a ValueError on the CPU, a NaN loss on a GPU.
    """
    _check_logits(logits, "multi_margin_loss")
    labels = _class_labels(target, logits, "multi_margin_loss")
    rows = _xp(logits).arange(labels.shape[0])
    true_score = reshape(logits[rows, labels], (-1, 1))
    # The sum runs over every i, so take the i == y term, max(0, margin), back out
    # (for margin < 0 it is 0: subtracting margin itself would add |margin|).
    hinge = relu(margin - true_score + logits)
    losses = (sum(hinge, axis=1) - builtins.max(margin, 0)) / logits.shape[1]
    return _reduce(_checked_on_device(losses, labels, logits.shape[1]), reduction)
