"""Activations as kernels: ReLU's forward/backward pair, and the activations a
layer's own kernel may apply to its output (``FUSABLE``), each with its derivative
written in terms of that output, so backward needs no copy of the input.
"""
from .._xp import array_module

# Names a fused kernel (conv2d_forward's ``activation=``) accepts.
FUSABLE = ("relu", "tanh", "sigmoid")


def check_activation(name, what):
    """``name`` if it is None or in FUSABLE, else a ValueError naming ``what``."""
    if name is not None and name not in FUSABLE:
        raise ValueError(f"{what}: cannot fuse activation {name!r}; "
                         f"fusable: {', '.join(FUSABLE)} (or None)")
    return name


def relu_forward(x):
    """(y, cache): y = max(x, 0) elementwise (NaN propagates, as np.maximum)."""
    y = array_module(x).maximum(x, 0)
    return y, y


def relu_backward(gy, cache):
    """gx = gy where the forward output was positive, else 0."""
    return gy * (cache > 0)


def activation_forward(name, x):
    """y = name(x) for a name in FUSABLE (sigmoid computed without overflow)."""
    xp = array_module(x)
    if name == "relu":
        return xp.maximum(x, 0)
    if name == "tanh":
        return xp.tanh(x)
    if name == "sigmoid":
        # exp of a non-positive number only: no overflow at +-1e4.
        e = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    raise ValueError(f"unknown activation {name!r}; fusable: {', '.join(FUSABLE)}")


def activation_backward(name, gy, y):
    """gx from gy and the activation's output y: relu y > 0, tanh 1 - y^2, sigmoid y (1 - y)."""
    if name == "relu":
        return gy * (y > 0)
    if name == "tanh":
        return gy * (1 - y * y)
    if name == "sigmoid":
        return gy * y * (1 - y)
    raise ValueError(f"unknown activation {name!r}; fusable: {', '.join(FUSABLE)}")
