"""Layers: each holds its parameters and composes ops from ``functional``.

Layers check their input's shape and name themselves and both shapes when it is
wrong; gradients come from the ops, never from the layers.
"""
import numpy as np

from kernels.reference.activation import FUSABLE, check_activation

from .. import functional as F
from . import init
from .module import Module, _table, tracing_shapes
from .parameter import Parameter


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _empty(*shape):
    return Parameter(np.zeros(shape, dtype=np.float32))


class Dense(Module):
    """Fully connected layer: y = x @ weight.T + bias, weight (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = _empty(self.out_features, self.in_features)
        self.bias = _empty(self.out_features) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input with {self.in_features} features in "
                             f"the last axis, got shape {tuple(x.shape)}")
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


Linear = Dense


class Conv2d(Module):
    """2-D convolution over NCHW input; weight (out_channels, in_channels, kH, kW).

    ``activation`` ("relu", "tanh", "sigmoid"; Keras's ``Conv2D(activation=...)``) is
    applied by the convolution's kernel itself. A ``Sequential`` does the same for a
    Conv2d directly followed by a ``ReLU``, ``Tanh`` or ``Sigmoid`` module.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 activation=None):
        super().__init__()
        self.activation = check_activation(activation, "Conv2d")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = \
            _pair(kernel_size), _pair(stride), _pair(padding)
        self.weight = _empty(self.out_channels, self.in_channels, *self.kernel_size)
        self.bias = _empty(self.out_channels) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x):
        return self.convolve(x, self.activation)

    def convolve(self, x, activation):
        """This layer's convolution followed by ``activation`` (None: none), in one kernel."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {tuple(x.shape)}")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, activation)

    def extra_repr(self):
        activation = "" if self.activation is None else f", activation={self.activation!r}"
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}{activation}"


class _Pool2d(Module):
    op = None  # the functional op; set by subclasses

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = self.kernel_size if stride is None else _pair(stride)
        self.padding = _pair(padding)

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self!r}: expected a 4-D input (N, C, H, W), "
                             f"got shape {tuple(x.shape)}")
        return type(self).op(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max pooling; stride defaults to the kernel size."""
    op = staticmethod(F.max_pool2d)


class AvgPool2d(_Pool2d):
    """Average pooling (zero padding counted); stride defaults to the kernel size."""
    op = staticmethod(F.avg_pool2d)


class Flatten(Module):
    """Merge all axes from ``start_dim`` (default 1: keep the batch axis)."""

    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return F.flatten(x, self.start_dim)


class Dropout(Module):
    """Randomly zero elements with probability ``p`` while training."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm2d(Module):
    """Batch normalisation over the channels of NCHW input, with running statistics."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_features}, H, W), "
                             f"got shape {tuple(x.shape)}")
        if self.training:
            self._buffers["num_batches_tracked"] += 1
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class ReLU(Module):
    """max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """Hyperbolic tangent."""

    def forward(self, x):
        return F.tanh(x)


class Sigmoid(Module):
    """Logistic sigmoid 1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Softmax(Module):
    """Softmax along ``dim`` (default: the last axis)."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Sequential(Module):
    """Layers applied in order; named "0", "1", ... as in PyTorch. Grows with ``add``."""

    def __init__(self, *layers):
        super().__init__()
        for layer in layers:
            self.add(layer)

    def add(self, layer):
        """Append a layer (Keras style); returns self."""
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.add expects a Module, got {type(layer).__name__}")
        setattr(self, str(len(self._modules)), layer)
        return self

    def forward(self, x):
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            activation = _fusable_pair(layers[i:i + 2])
            if activation is None:
                x = layers[i](x)
                i += 1
            else:  # conv + activation in one kernel: same numbers, one pass fewer each way
                x = layers[i].convolve(x, activation)
                i += 2
        return x

    def __getitem__(self, index):
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __repr__(self):
        rows = [(name, repr(layer).replace("\n", " "),
                 f"{sum(p.size for p in layer.parameters()):,}")
                for name, layer in self._modules.items()]
        return "Sequential\n" + _table(["#", "Layer", "Params"], rows,
                                       footer=[f"Total params: {self.num_parameters():,}"])


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU}

# Activation modules a Conv2d right before them can apply in its own kernel.
_FUSED_AFTER_CONV = {ACTIVATIONS[name]: name for name in FUSABLE}


def _fusable_pair(pair):
    """The activation name when ``pair`` is a plain Conv2d then a plain activation module.

    Only exact types qualify (a subclass may have changed ``forward``), the Conv2d must
    not have an activation of its own, and nothing fuses while ``summary`` traces the
    layers one by one.
    """
    if len(pair) < 2 or tracing_shapes():
        return None
    conv, act = pair
    if type(conv) is not Conv2d or conv.activation is not None:
        return None
    return _FUSED_AFTER_CONV.get(type(act))


def activation(name):
    """An activation module by name ("relu", "tanh", "sigmoid", "leaky_relu")."""
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None

