"""The basic layers: ``Linear`` (``Dense``) and ``LazyLinear``, ``Flatten``, ``Dropout``,
``Identity``. Each holds its parameters and composes ops from ``functional``.

Layers check their input's shape and name themselves and both shapes when it is
wrong; gradients come from the ops, never from the layers. The other families live
beside this module (``conv_pool``: convolutions and pooling; ``activation``;
``norm``: batch, layer and group normalisation; ``containers``: ``Sequential``,
``ModuleList``) and are re-exported here, so ``from minigrad.nn.layers import X``
keeps working.
"""
from .. import functional as F
from . import init
from .layer_utils import check_floating, empty_parameter, materialize, naming_layer, positive_int
from .module import ANY_RANK, Module
from .parameter import UninitializedParameter


class Dense(Module):
    """Fully connected layer: y = x @ weight.T + bias, weight (out_features, in_features).

    ``Dense(in_features, out_features)`` as ``torch.nn.Linear``; ``Dense(units)`` with one
    argument is Keras's Dense: ``units`` outputs, the input size read from the first
    input (the weight is made and initialised then; see :class:`LazyLinear`).
    """

    input_rank = 2

    def __init__(self, in_features, out_features=None, bias=True):
        super().__init__()
        if out_features is None:  # Keras's Dense(units): the input size comes later
            in_features, out_features = None, in_features
        layer = f"{type(self).__name__}({in_features!r}, {out_features!r})"
        self.out_features = positive_int(out_features, "out_features", layer)
        if in_features is None:
            self.in_features = None
            self.weight = UninitializedParameter()
            self.bias = UninitializedParameter() if bias else None
        else:
            self.in_features = positive_int(in_features, "in_features", layer)
            self.weight = empty_parameter(self.out_features, self.in_features)
            self.bias = empty_parameter(self.out_features) if bias else None
            init.default_init_(self.weight, self.bias)

    def forward(self, x):
        if self.in_features is None:
            self.in_features = materialize(self, x, x.shape[-1] if x.ndim else 0,
                                            (self.out_features,), ())
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input with {self.in_features} features in "
                             f"the last axis, got shape {tuple(x.shape)}")
        check_floating(self, x)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


Linear = Dense


class LazyLinear(Dense):
    """``torch.nn.LazyLinear(out_features)``: a Linear whose ``in_features`` is read from
    its first input; it then becomes a plain :class:`Linear` (as in PyTorch)."""

    cls_to_become = Dense

    def __init__(self, out_features, bias=True):
        super().__init__(out_features, bias=bias)


class Flatten(Module):
    """Merge the axes ``start_dim`` to ``end_dim`` (inclusive) into one, as
    torch.nn.Flatten (default 1 to -1: keep the batch axis, merge the rest)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return naming_layer(self, F.flatten, x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Randomly zero elements with probability ``p`` while training."""

    input_rank = ANY_RANK

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Identity(Module):
    """Returns its input (torch.nn.Identity); any constructor arguments are ignored."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


# The other layer families, re-exported (they import nothing from this module).
from .activation import (ACTIVATIONS, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh,  # noqa: E402,F401
                         activation)
from .containers import ModuleList, Sequential  # noqa: E402,F401
from .conv_pool import AvgPool2d, Conv2d, LazyConv2d, MaxPool2d  # noqa: E402,F401
from .norm import BatchNorm2d, SyncBatchNorm  # noqa: E402,F401
