"""Activation modules, with torch.nn's names, arguments and defaults: the exercise's
(ReLU, LeakyReLU, Tanh, Sigmoid, Softmax) and more; ``ACTIVATIONS`` and
:func:`activation` find one by name. ``inplace`` is accepted and ignored (see
``functional.activation``)."""
import numpy as np

from .. import functional as F
from ..tensor import Tensor
from .module import ANY_RANK, Module
from .parameter import Parameter


class _Pointwise(Module):
    """An activation module over one functional op and its keyword arguments."""

    op = None  # the functional op; set by subclasses

    def __init__(self, **kwargs):
        super().__init__()
        # Tried once on a probe, so a bad argument fails where the layer is built.
        type(self).op(Tensor(np.zeros(1, np.float32)), **kwargs)
        self.kwargs = kwargs

    def forward(self, x):
        return type(self).op(x, **self.kwargs)

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())


class GELU(_Pointwise):
    """x * Phi(x); ``approximate="tanh"`` for the tanh approximation."""
    op = staticmethod(F.gelu)

    def __init__(self, approximate="none"):
        super().__init__(approximate=approximate)


class SiLU(_Pointwise):
    """x * sigmoid(x)."""
    op = staticmethod(F.silu)

    def __init__(self, inplace=False):
        super().__init__()


class Mish(_Pointwise):
    """x * tanh(softplus(x))."""
    op = staticmethod(F.mish)

    def __init__(self, inplace=False):
        super().__init__()


class ELU(_Pointwise):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    op = staticmethod(F.elu)

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__(alpha=alpha)


class SELU(_Pointwise):
    """Scaled ELU with the self-normalising constants."""
    op = staticmethod(F.selu)

    def __init__(self, inplace=False):
        super().__init__()


class Softplus(_Pointwise):
    """log(1 + exp(beta * x)) / beta, linear above ``threshold``."""
    op = staticmethod(F.softplus)

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__(beta=beta, threshold=threshold)


class Hardtanh(_Pointwise):
    """x clipped to [min_val, max_val]."""
    op = staticmethod(F.hardtanh)

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__(min_val=min_val, max_val=max_val)


class ReLU6(_Pointwise):
    """min(max(x, 0), 6)."""
    op = staticmethod(F.relu6)

    def __init__(self, inplace=False):
        super().__init__()


class Hardswish(_Pointwise):
    """x * relu6(x + 3) / 6."""
    op = staticmethod(F.hardswish)

    def __init__(self, inplace=False):
        super().__init__()


class Hardsigmoid(_Pointwise):
    """relu6(x + 3) / 6."""
    op = staticmethod(F.hardsigmoid)

    def __init__(self, inplace=False):
        super().__init__()


class LogSigmoid(_Pointwise):
    """log(sigmoid(x))."""
    op = staticmethod(F.logsigmoid)


class PReLU(Module):
    """x for x > 0, else a learned slope times x: one slope, or one per channel
    (``num_parameters=C``, channels on axis 1), starting at ``init``."""

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) \
                or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive int, "
                             f"got {num_parameters!r}")
        self.num_parameters = num_parameters
        self.weight = Parameter(np.full(num_parameters, init, dtype=np.float32))

    def forward(self, x):
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class ReLU(Module):
    """max(x, 0). ``inplace`` is accepted (torch's argument) and ignored."""

    def __init__(self, inplace=False):
        super().__init__()

    input_rank = ANY_RANK

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise. ``inplace`` is accepted and ignored."""

    input_rank = ANY_RANK

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """Hyperbolic tangent."""

    input_rank = ANY_RANK

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """Logistic sigmoid 1 / (1 + exp(-x))."""

    input_rank = ANY_RANK

    def forward(self, x):
        return F.sigmoid(x)


class Softmax(Module):
    """Softmax along ``dim`` (default: the last axis)."""

    input_rank = ANY_RANK

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU,
               "gelu": GELU, "silu": SiLU, "elu": ELU, "selu": SELU, "softplus": Softplus,
               "mish": Mish, "hardtanh": Hardtanh, "relu6": ReLU6, "hardswish": Hardswish,
               "hardsigmoid": Hardsigmoid, "logsigmoid": LogSigmoid, "prelu": PReLU}


def activation(name):
    """An activation module by name ("relu", "tanh", "sigmoid", "leaky_relu", "gelu", ...:
    the keys of ``ACTIVATIONS``), with its default arguments."""
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None
