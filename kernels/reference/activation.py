"""Activations as kernels (``FUSABLE``: what ``F.relu``, ``F.tanh``, ``F.sigmoid``
run, and what a convolution's own kernel may apply to its output), each with its
derivative written in terms of the output, so backward needs no copy of the input.
"""
from .._xp import array_module

# Names a fused kernel (conv2d_forward's ``activation=``) accepts.
FUSABLE = ("relu", "tanh", "sigmoid")


def require_activation(name, what):
    """``name`` if it is in FUSABLE, else a ValueError naming ``what`` and the choices."""
    if name not in FUSABLE:
        raise ValueError(f"{what}: unknown activation {name!r}; a kernel applies "
                         f"{', '.join(FUSABLE)}")
    return name


def check_activation(name, what):
    """``name`` if it is None (no activation) or in FUSABLE, else a ValueError."""
    return None if name is None else require_activation(name, what)


def activation_forward(name, x):
    """y = name(x) for a name in FUSABLE (relu keeps NaN, as np.maximum; sigmoid is
    computed without overflow). relu keeps an integer input's dtype; tanh and sigmoid
    of integers (or booleans) are float32, as in torch."""
    require_activation(name, "activation_forward")
    xp = array_module(x)
    if name == "relu":
        return xp.maximum(x, 0)
    if x.dtype.kind in "biu":
        x = x.astype(xp.float32)
    if name == "tanh":
        return xp.tanh(x)
    e = xp.exp(-xp.abs(x))  # sigmoid, from exp of a non-positive number: no overflow
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def activation_backward(name, gy, y):
    """gx from gy and the activation's output y: relu y > 0, tanh 1 - y^2, sigmoid y (1 - y).

    ReLU selects rather than multiplies: an infinite or NaN gy where y <= 0 gives 0,
    as in torch (inf * 0 would be NaN).
    """
    require_activation(name, "activation_backward")
    if name == "relu":
        xp = array_module(gy)
        return xp.where(y > 0, gy, gy.dtype.type(0))
    if name == "tanh":
        return gy * (1 - y * y)
    return gy * y * (1 - y)  # sigmoid
