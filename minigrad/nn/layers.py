"""Layers: each holds its parameters and composes ops from ``functional``.

Layers check their input's shape and name themselves and both shapes when it is
wrong; gradients come from the ops, never from the layers.
"""
import numpy as np

from .. import distributed as dist
from .. import functional as F
from .._kernels import kernel_module
from ..functional.conv import _check_groups
from ..functional.pool import _window_args
from . import init
from .activation import (ELU, GELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LogSigmoid,
                         Mish, PReLU, ReLU6, SiLU, Softplus)
from .module import ANY_RANK, Module, _table, record_fused
from .parameter import Parameter, UninitializedParameter, is_uninitialized

# Activations a convolution's kernel applies itself, and their check.
FUSABLE = kernel_module("reference.activation").FUSABLE
check_activation = kernel_module("reference.activation").check_activation


def _positive_int(value, what, layer):
    """``value`` as an int >= 1, or an error that names ``layer``."""
    if isinstance(value, (tuple, list)):
        raise TypeError(f"{layer}: {what} must be an int, got {value!r}")
    return F._pair(value, what, layer, 1)[0]


def _check_floating(layer, x):
    """Integer (or bool) input would silently make the layer compute in float64: refuse it."""
    if x.dtype.kind != "f":
        raise TypeError(f"{layer!r}: expected a floating-point input (float16, float32 or "
                        f"float64), got dtype {x.dtype}; convert it with .float()")


def _naming_layer(layer, op, *args):
    """``op(*args)``, with ``layer`` (a Module, or its description) put in front of a
    ValueError's message.

    The error keeps its type (a caller may catch a ValueError subclass) and chains to
    the original, whose traceback shows where inside the op it arose. The try costs
    nothing unless the op raises, and the repr is only made then, so the hot path pays
    nothing.
    """
    try:
        return op(*args)
    except (ValueError, IndexError) as exc:  # IndexError: a dim out of range, as torch
        name = layer if isinstance(layer, str) else repr(layer)
        try:
            named = type(exc)(f"{name}: {exc}")
        except Exception:
            named = None
        if named is None:  # a subclass built from other arguments: note the layer instead
            exc.add_note(f"raised in {name}")
            raise
        raise named from exc


def _empty(*shape):
    return Parameter(np.zeros(shape, dtype=np.float32))


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
        self.out_features = _positive_int(out_features, "out_features", layer)
        if in_features is None:
            self.in_features = None
            self.weight = UninitializedParameter()
            self.bias = UninitializedParameter() if bias else None
        else:
            self.in_features = _positive_int(in_features, "in_features", layer)
            self.weight = _empty(self.out_features, self.in_features)
            self.bias = _empty(self.out_features) if bias else None
            init.default_init_(self.weight, self.bias)

    def forward(self, x):
        if self.in_features is None:
            self.in_features = _materialize(self, x, x.shape[-1] if x.ndim else 0,
                                            (self.out_features,), ())
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input with {self.in_features} features in "
                             f"the last axis, got shape {tuple(x.shape)}")
        _check_floating(self, x)
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


Linear = Dense


class LazyLinear(Dense):
    """``torch.nn.LazyLinear(out_features)``: a Linear whose ``in_features`` is read from
    its first input; it then becomes a plain :class:`Linear` (as in PyTorch)."""

    def __init__(self, out_features, bias=True):
        super().__init__(out_features, bias=bias)


def _materialize(layer, x, fan_in, out_shape, kernel_shape):
    """Give a lazy ``layer`` its weight ``(*out_shape, fan_in, *kernel_shape)`` and bias
    from the first input ``x`` (on its device, in its floating dtype), initialised as
    the eager layer would be; returns ``fan_in``. A parameter already given a shape (by
    ``load_state_dict``) keeps its values."""
    if fan_in < 1:
        raise ValueError(f"{layer!r}: cannot infer the input size from an input of shape "
                         f"{tuple(x.shape)}")
    dtype = x.dtype if x.dtype.kind == "f" else np.float32
    weight_shape = (*out_shape, fan_in, *kernel_shape)
    fresh = is_uninitialized(layer.weight)
    for param, shape in ((layer.weight, weight_shape), (layer.bias, out_shape)):
        if param is not None and is_uninitialized(param):
            param.materialize(shape, x.device, dtype)
    if tuple(layer.weight.shape) != weight_shape:
        raise ValueError(f"{layer!r}: its loaded weight has shape {tuple(layer.weight.shape)}, "
                         f"but an input of shape {tuple(x.shape)} needs {weight_shape}")
    if fresh:
        init.default_init_(layer.weight, layer.bias)
    if type(layer) in _LAZY_BECOMES:  # as torch's cls_to_become: now an ordinary layer
        object.__setattr__(layer, "__class__", _LAZY_BECOMES[type(layer)])
    return fan_in


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _padded_input(conv, x):
    """(input, padding for the op) of a convolution layer: with a padding_mode other
    than "zeros" the layer pads the input itself (F.pad) and the op pads nothing."""
    if conv.padding_mode == "zeros":
        return x, conv.padding
    amounts = _mode_padding(conv.padding, conv.kernel_size, conv.dilation)
    return _naming_layer(conv, F.pad, x, amounts, conv.padding_mode), 0


def _mode_padding(padding, kernel, dilation):
    """F.pad's amounts (last dimension first, as torch's _reversed_padding_repeated_twice)
    for a convolution whose padding_mode is not "zeros": the per-axis padding twice, or
    for "same" the split of d*(k-1) that puts the odd row (column) at the end."""
    if padding == "valid":
        padding = (0,) * len(kernel)
    amounts = []
    for a in reversed(range(len(kernel))):
        if padding == "same":
            total = dilation[a] * (kernel[a] - 1)
            amounts += [total // 2, total - total // 2]
        else:
            amounts += [padding[a], padding[a]]
    return tuple(amounts)


def _check_padding_mode(layer, padding_mode):
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{layer}: padding_mode must be one of {PADDING_MODES}, got "
                         f"{padding_mode!r}")
    return padding_mode


class Conv2d(Module):
    """2-D convolution over NCHW input; weight (out_channels, in_channels/groups, kH, kW).

    torch.nn.Conv2d's arguments (``dilation``, ``groups``, ``padding_mode`` "zeros",
    "reflect", "replicate" or "circular"), plus ``activation`` ("relu", "tanh",
    "sigmoid"; Keras's ``Conv2D(activation=...)``), applied by the convolution's kernel
    itself. A ``Sequential`` does the same for a Conv2d directly followed by a
    ``ReLU``, ``Tanh`` or ``Sigmoid`` module.
    """

    input_rank = 4

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", activation=None):
        super().__init__()
        self.activation = check_activation(activation, "Conv2d")
        layer = f"{type(self).__name__}({in_channels!r}, {out_channels!r}, " \
                f"kernel_size={kernel_size!r})"
        lazy = in_channels is None and isinstance(self, LazyConv2d)
        self.in_channels = None if lazy else _positive_int(in_channels, "in_channels", layer)
        self.out_channels = _positive_int(out_channels, "out_channels", layer)
        self.kernel_size = F._pair(kernel_size, "kernel_size", layer, 1)
        self.stride = F._pair(stride, "stride", layer, 1)
        self.dilation = F._pair(dilation, "dilation", layer, 1)
        # A lazy layer (groups 1) learns in_channels at its first input.
        self.groups = _check_groups(layer, groups, groups if lazy else self.in_channels,
                                    self.out_channels)
        self.padding_mode = _check_padding_mode(layer, padding_mode)
        if isinstance(padding, str):  # "valid" or "same", checked as F.conv2d will
            _naming_layer(layer, F._conv_padding, padding, self.kernel_size, self.stride,
                          self.dilation)
            self.padding = padding
        else:
            self.padding = F._pair(padding, "padding", layer, 0)
        if lazy:
            self.weight = UninitializedParameter()
            self.bias = UninitializedParameter() if bias else None
        else:
            self.weight = _empty(self.out_channels, self.in_channels // self.groups,
                                 *self.kernel_size)
            self.bias = _empty(self.out_channels) if bias else None
            init.default_init_(self.weight, self.bias)

    def forward(self, x):
        return self.convolve(x, self.activation)

    def convolve(self, x, activation):
        """This layer's convolution followed by ``activation`` (None: none), in one kernel."""
        if self.in_channels is None and x.ndim == 4:
            self.in_channels = _materialize(self, x, x.shape[1], (self.out_channels,),
                                            self.kernel_size)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {tuple(x.shape)}")
        _check_floating(self, x)
        x, padding = _padded_input(self, x)
        return _naming_layer(self, F.conv2d, x, self.weight, self.bias, self.stride, padding,
                             self.dilation, self.groups, activation)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding!r}" + _conv_extras(self)


def _conv_extras(conv):
    """The non-default arguments of a convolution layer, for its repr."""
    extras = ""
    if any(getattr(conv, "output_padding", ())):
        extras += f", output_padding={conv.output_padding}"
    if conv.dilation != (1,) * len(conv.kernel_size):
        extras += f", dilation={conv.dilation}"
    if conv.groups != 1:
        extras += f", groups={conv.groups}"
    if conv.padding_mode != "zeros":
        extras += f", padding_mode={conv.padding_mode!r}"
    if getattr(conv, "activation", None) is not None:
        extras += f", activation={conv.activation!r}"
    return extras


class LazyConv2d(Conv2d):
    """``torch.nn.LazyConv2d(out_channels, kernel_size, ...)``: a Conv2d whose
    ``in_channels`` is read from its first input; it then becomes a plain :class:`Conv2d`."""

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 activation=None):
        super().__init__(None, out_channels, kernel_size, stride, padding, bias=bias,
                         activation=activation)


_LAZY_BECOMES = {LazyLinear: Linear, LazyConv2d: Conv2d}


class _Pool2d(Module):
    input_rank = 4

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        layer = f"{type(self).__name__}(kernel_size={kernel_size!r})"
        self.kernel_size, self.stride, self.padding, self.dilation = _window_args(
            layer, kernel_size, stride, padding, dilation)

    def _check_input(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self!r}: expected a 4-D input (N, C, H, W), "
                             f"got shape {tuple(x.shape)}")
        return x

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max pooling (torch.nn.MaxPool2d); stride defaults to the kernel size.
    ``return_indices`` makes it return (values, flat indices) for ``MaxUnpool2d``."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation)
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)

    def forward(self, x):
        return _naming_layer(self, F.max_pool2d, self._check_input(x), self.kernel_size,
                             self.stride, self.padding, self.dilation, self.ceil_mode,
                             self.return_indices)

    def extra_repr(self):
        return super().extra_repr() + (f", dilation={self.dilation}" if self.dilation != (1, 1)
                                       else "") + (", ceil_mode=True" if self.ceil_mode else "")


class AvgPool2d(_Pool2d):
    """Average pooling (torch.nn.AvgPool2d); stride defaults to the kernel size; zero
    padding counts in the divisor unless ``count_include_pad=False``."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, x):
        return _naming_layer(self, F.avg_pool2d, self._check_input(x), self.kernel_size,
                             self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                             self.divisor_override)

    def extra_repr(self):
        extras = (", ceil_mode=True" if self.ceil_mode else "") + \
            ("" if self.count_include_pad else ", count_include_pad=False") + \
            ("" if self.divisor_override is None else
             f", divisor_override={self.divisor_override}")
        return super().extra_repr() + extras


class Flatten(Module):
    """Merge all axes from ``start_dim`` (default 1: keep the batch axis)."""

    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        return _naming_layer(self, F.flatten, x, self.start_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}"


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


class _BatchNorm(Module):
    """Batch normalisation over axis 1 (the channels), with running statistics."""

    ndims, layout = (), ""  # the input ranks taken, and how to name them; set by subclasses

    input_rank = 4

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x):
        self._check_input(x)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)

    def _check_input(self, x):
        """Refuse a wrongly shaped input; count the training batch (as torch does)."""
        if x.ndim not in self.ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape "
                             f"{self.layout.format(C=self.num_features)}, "
                             f"got shape {tuple(x.shape)}")
        if self.training and self._buffers["num_batches_tracked"] is not None:
            self._buffers["num_batches_tracked"] += 1

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over the channels of NCHW input, with running statistics."""

    ndims, layout = (4,), "(N, {C}, H, W)"


class Identity(Module):
    """Returns its input (torch.nn.Identity); any constructor arguments are ignored."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch (every rank's
    shard together), through differentiable all-reduces, so that gradients flow across
    ranks as they would through one big batch. Outside training, or with no process
    group of more than one rank, it is a BatchNorm2d. Opt in with
    :meth:`convert_sync_batchnorm`; it costs three small collectives per layer forward
    and two backward.
    """

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input(x)
        count = np.array([x.shape[0] * x.shape[2] * x.shape[3]], dtype=np.int64)
        dist.all_reduce(count)
        total = int(count[0])
        if total < 2:
            raise ValueError(f"{self!r}: expected more than 1 value per channel over all "
                             f"ranks when training, got input of shape {tuple(x.shape)}")
        axes, shape = (0, 2, 3), (1, self.num_features, 1, 1)
        # Two passes (mean, then the centred squares): no E[x^2] - mean^2 cancellation.
        mean = dist.functional.all_reduce(x.sum(axis=axes)) / total
        centered = x - mean.reshape(shape)
        var = dist.functional.all_reduce((centered * centered).sum(axis=axes)) / total
        if self.running_mean is not None:
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean.data
            self.running_var *= 1 - m
            self.running_var += m * var.data * total / (total - 1)  # unbiased, as torch
        y = centered * ((var + self.eps) ** -0.5).reshape(shape)
        if self.weight is not None:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """``module`` with every BatchNorm2d replaced by a SyncBatchNorm that shares its
        parameters, buffers and mode (PyTorch's name); returns the converted module."""
        if isinstance(module, BatchNorm2d) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum,
                       affine=module.weight is not None)
            if module.weight is not None:
                sync.weight, sync.bias = module.weight, module.bias
            sync._buffers.update(module._buffers)
            object.__setattr__(sync, "training", module.training)
            return sync
        for name, child in module._modules.items():
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child)
        return module


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


class _ModuleSequence(Module):
    """Children named "0", "1", ... in order (PyTorch's names), indexed like a list."""

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules only, "
                            f"got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            part = type(self)()
            for module in modules[index]:
                part.append(module)
            return part
        try:
            return modules[index]
        except IndexError:
            raise IndexError(f"{type(self).__name__} index {index} is out of range for "
                             f"{len(modules)} modules") from None

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(_ModuleSequence):
    """Layers applied in order; named "0", "1", ... as in PyTorch. Grows with ``add``.

    A slice is a new Sequential numbered from "0" again (PyTorch keeps the old names).
    A Conv2d directly followed by a ``ReLU``, ``Tanh`` or ``Sigmoid`` module runs as
    one kernel (the convolution applies the activation: the same numbers, one pass
    fewer each way); :meth:`fused_layers` lists those pairs, and ``repr`` and
    ``summary`` show them.
    """

    def __init__(self, *layers):
        super().__init__()
        for layer in layers:
            self.append(layer)

    def add(self, layer):
        """Append a layer (Keras style); returns self."""
        return self.append(layer)

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
                record_fused(layers[i:i + 2], x)
                i += 2
        return x

    def fused_layers(self):
        """``(conv name, activation name)`` of each pair that :meth:`forward` runs as
        one kernel, e.g. ``[("0", "1"), ("3", "4")]``."""
        names, layers = list(self._modules), list(self._modules.values())
        pairs, i = [], 0
        while i < len(layers):
            if _fusable_pair(layers[i:i + 2]) is None:
                i += 1
            else:
                pairs.append((names[i], names[i + 1]))
                i += 2
        return pairs

    def __repr__(self):
        rows = [(name, repr(layer).replace("\n", " "),
                 f"{sum(p.size for p in layer.parameters()):,}")
                for name, layer in self._modules.items()]
        footer = [f"Total params: {self.num_parameters():,}"]
        fused = self.fused_layers()
        if fused:
            footer.append("Fused (one kernel each): " + ", ".join(f"{a}+{b}" for a, b in fused))
        return "Sequential\n" + _table(["#", "Layer", "Params"], rows, footer=footer)


class ModuleList(_ModuleSequence):
    """A list of registered modules (torch.nn.ModuleList), for models that loop over layers.

    A plain Python list hides its modules: their parameters would not train, move or
    save. Here they are children "0", "1", ..., so ``state_dict`` keys read
    ``"blocks.0.weight"`` as in PyTorch. It has no ``forward``: the owner calls each.
    """

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def extend(self, modules):
        """Append every module of an iterable; returns self."""
        for module in modules:
            self.append(module)
        return self

    def __setitem__(self, index, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules only, got {type(module).__name__}")
        setattr(self, list(self._modules)[index], module)


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU,
               "gelu": GELU, "silu": SiLU, "elu": ELU, "selu": SELU, "softplus": Softplus,
               "mish": Mish, "hardtanh": Hardtanh, "relu6": ReLU6, "hardswish": Hardswish,
               "hardsigmoid": Hardsigmoid, "logsigmoid": LogSigmoid, "prelu": PReLU}

# Activation modules a Conv2d right before them can apply in its own kernel.
_FUSED_AFTER_CONV = {ACTIVATIONS[name]: name for name in FUSABLE}


def _fusable_pair(pair):
    """The activation name when ``pair`` is a plain Conv2d then a plain activation module.

    Only exact types qualify (a subclass may have changed ``forward``), and the Conv2d
    must not have an activation of its own.
    """
    if len(pair) < 2:
        return None
    conv, act = pair
    if type(conv) is not Conv2d or conv.activation is not None:
        return None
    return _FUSED_AFTER_CONV.get(type(act))


def activation(name):
    """An activation module by name ("relu", "tanh", "sigmoid", "leaky_relu", "gelu", ...:
    the keys of ``ACTIVATIONS``), with its default arguments."""
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None

