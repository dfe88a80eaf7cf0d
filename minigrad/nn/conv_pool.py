"""Convolution, pooling, resizing and padding layers, with torch.nn's names,
constructor arguments and state-dict keys; each composes ops from ``functional``."""
from .. import functional as F
from .._kernels import kernel_module
from ..functional.conv import _check_groups, _single, conv_padding
from ..functional.pool import _window_args
from ..utils import pair
from . import init
from .layer_utils import check_floating, empty_parameter, materialize, naming_layer, positive_int
from .module import Module
from .parameter import UninitializedParameter

# The activations a convolution's kernel applies itself, checked by name.
check_activation = kernel_module("reference.activation").check_activation


PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _padded_input(conv, x):
    """(input, padding for the op) of a convolution layer: with a padding_mode other
    than "zeros" the layer pads the input itself (F.pad) and the op pads nothing."""
    if conv.padding_mode == "zeros":
        return x, conv.padding
    amounts = _mode_padding(conv.padding, conv.kernel_size, conv.dilation)
    return naming_layer(conv, F.pad, x, amounts, conv.padding_mode), 0


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
        self.in_channels = None if lazy else positive_int(in_channels, "in_channels", layer)
        self.out_channels = positive_int(out_channels, "out_channels", layer)
        self.kernel_size = pair(kernel_size, "kernel_size", layer, 1)
        self.stride = pair(stride, "stride", layer, 1)
        self.dilation = pair(dilation, "dilation", layer, 1)
        # A lazy layer (groups 1) learns in_channels at its first input.
        self.groups = _check_groups(layer, groups, groups if lazy else self.in_channels,
                                    self.out_channels)
        self.padding_mode = _check_padding_mode(layer, padding_mode)
        if isinstance(padding, str):  # "valid" or "same", checked as F.conv2d will
            naming_layer(layer, conv_padding, padding, self.kernel_size, self.stride,
                          self.dilation)
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", layer, 0)
        if lazy:
            self.weight = UninitializedParameter()
            self.bias = UninitializedParameter() if bias else None
        else:
            self.weight = empty_parameter(self.out_channels, self.in_channels // self.groups,
                                 *self.kernel_size)
            self.bias = empty_parameter(self.out_channels) if bias else None
            init.default_init_(self.weight, self.bias)

    def forward(self, x):
        return self.convolve(x, self.activation)

    def convolve(self, x, activation):
        """This layer's convolution followed by ``activation`` (None: none), in one kernel."""
        if self.in_channels is None and x.ndim == 4:
            self.in_channels = materialize(self, x, x.shape[1], (self.out_channels,),
                                            self.kernel_size)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {tuple(x.shape)}")
        check_floating(self, x)
        x, padding = _padded_input(self, x)
        return naming_layer(self, F.conv2d, x, self.weight, self.bias, self.stride, padding,
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

    cls_to_become = Conv2d

    def __init__(self, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 activation=None):
        super().__init__(None, out_channels, kernel_size, stride, padding, bias=bias,
                         activation=activation)


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
        return naming_layer(self, F.max_pool2d, self._check_input(x), self.kernel_size,
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
        return naming_layer(self, F.avg_pool2d, self._check_input(x), self.kernel_size,
                             self.stride, self.padding, self.ceil_mode, self.count_include_pad,
                             self.divisor_override)

    def extra_repr(self):
        extras = (", ceil_mode=True" if self.ceil_mode else "") + \
            ("" if self.count_include_pad else ", count_include_pad=False") + \
            ("" if self.divisor_override is None else
             f", divisor_override={self.divisor_override}")
        return super().extra_repr() + extras


def _check_input(layer, x, ndim, channels=None):
    """A clear error naming ``layer`` when ``x`` is not ``ndim``-D (with ``channels``)."""
    axes = {3: "(N, C, L)", 4: "(N, C, H, W)"}[ndim]
    if x.ndim != ndim or (channels is not None and x.shape[1] != channels):
        wanted = axes if channels is None else axes.replace("C", str(channels))
        raise ValueError(f"{layer!r}: expected input of shape {wanted}, got shape "
                         f"{tuple(x.shape)}")


class Conv1d(Module):
    """1-D convolution over (N, C, L) input (torch.nn.Conv1d); weight (out_channels,
    in_channels/groups, kernel_size)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros"):
        super().__init__()
        layer = f"Conv1d({in_channels!r}, {out_channels!r}, kernel_size={kernel_size!r})"
        self.in_channels = positive_int(in_channels, "in_channels", layer)
        self.out_channels = positive_int(out_channels, "out_channels", layer)
        self.kernel_size = (_single(kernel_size, "kernel_size", layer, 1),)
        self.stride = (_single(stride, "stride", layer, 1),)
        self.dilation = (_single(dilation, "dilation", layer, 1),)
        self.groups = _check_groups(layer, groups, self.in_channels, self.out_channels)
        self.padding_mode = _check_padding_mode(layer, padding_mode)
        if isinstance(padding, str):
            naming_layer(layer, conv_padding, padding, (1,) + self.kernel_size,
                          (1,) + self.stride, (1,) + self.dilation)
            self.padding = padding
        else:
            self.padding = (_single(padding, "padding", layer, 0),)
        self.weight = empty_parameter(self.out_channels, self.in_channels // self.groups,
                             self.kernel_size[0])
        self.bias = empty_parameter(self.out_channels) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x):
        _check_input(self, x, 3, self.in_channels)
        check_floating(self, x)
        x, padding = _padded_input(self, x)
        return naming_layer(self, F.conv1d, x, self.weight, self.bias, self.stride, padding,
                             self.dilation, self.groups)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding!r}" + _conv_extras(self)


class ConvTranspose2d(Module):
    """Transposed 2-D convolution (torch.nn.ConvTranspose2d); weight (in_channels,
    out_channels/groups, kH, kW), as torch lays it out. ``forward(x, output_size)``
    may ask for one of the output sizes a stride > 1 leaves open (the output_padding
    that gives it)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros"):
        super().__init__()
        layer = f"ConvTranspose2d({in_channels!r}, {out_channels!r}, " \
                f"kernel_size={kernel_size!r})"
        self.in_channels = positive_int(in_channels, "in_channels", layer)
        self.out_channels = positive_int(out_channels, "out_channels", layer)
        self.kernel_size = pair(kernel_size, "kernel_size", layer, 1)
        self.stride = pair(stride, "stride", layer, 1)
        self.padding = pair(padding, "padding", layer, 0)
        self.output_padding = pair(output_padding, "output_padding", layer, 0)
        self.dilation = pair(dilation, "dilation", layer, 1)
        self.groups = _check_groups(layer, groups, self.in_channels, self.out_channels)
        if padding_mode != "zeros":  # as torch
            raise ValueError(f"{layer}: only padding_mode='zeros' is supported, got "
                             f"{padding_mode!r}")
        self.padding_mode = padding_mode
        self.weight = empty_parameter(self.in_channels, self.out_channels // self.groups,
                             *self.kernel_size)
        self.bias = empty_parameter(self.out_channels) if bias else None
        init.default_init_(self.weight, self.bias)

    def forward(self, x, output_size=None):
        _check_input(self, x, 4, self.in_channels)
        check_floating(self, x)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(x, output_size)
        return naming_layer(self, F.conv_transpose2d, x, self.weight, self.bias, self.stride,
                             self.padding, output_padding, self.groups, self.dilation)

    def _output_padding_for(self, x, output_size):
        wanted = tuple(output_size)[-2:]
        smallest = [F.conv_transpose_output_size(x.shape[2 + a], self.kernel_size[a],
                                                 self.stride[a], self.padding[a], 0,
                                                 self.dilation[a]) for a in range(2)]
        extra = tuple(w - s for w, s in zip(wanted, smallest))
        if len(wanted) != 2 or not all(0 <= e < s for e, s in zip(extra, self.stride)):
            raise ValueError(f"{self!r}: output_size {tuple(output_size)} is not reachable: "
                             f"each side must be in [{smallest[0]}, {smallest[0] + self.stride[0]}) "
                             f"x [{smallest[1]}, {smallest[1] + self.stride[1]})")
        return extra

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}" + _conv_extras(self)


class MaxPool1d(Module):
    """Max pooling over (N, C, L) input (torch.nn.MaxPool1d)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = \
            kernel_size, kernel_size if stride is None else stride, padding, dilation
        self.return_indices, self.ceil_mode = bool(return_indices), bool(ceil_mode)
        _window_args(type(self).__name__, (1, kernel_size), (1, self.stride), (0, padding),
                     (1, dilation))

    def forward(self, x):
        _check_input(self, x, 3)
        return naming_layer(self, F.max_pool1d, x, self.kernel_size, self.stride,
                             self.padding, self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """Average pooling over (N, C, L) input (torch.nn.AvgPool1d)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size, self.stride, self.padding = \
            kernel_size, kernel_size if stride is None else stride, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        _window_args(type(self).__name__, (1, kernel_size), (1, self.stride), (0, padding))

    def forward(self, x):
        _check_input(self, x, 3)
        return naming_layer(self, F.avg_pool1d, x, self.kernel_size, self.stride,
                             self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool2d(Module):
    """The partial inverse of ``MaxPool2d(return_indices=True)`` (torch.nn.MaxUnpool2d):
    ``unpool(values, indices, output_size=None)``."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        layer = f"MaxUnpool2d(kernel_size={kernel_size!r})"
        self.kernel_size, self.stride, self.padding, _ = _window_args(layer, kernel_size,
                                                                      stride, padding)

    def forward(self, x, indices, output_size=None):
        _check_input(self, x, 4)
        return naming_layer(self, F.max_unpool2d, x, indices, self.kernel_size, self.stride,
                             self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _Adaptive2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size!r}"


class AdaptiveAvgPool2d(_Adaptive2d):
    """Means over torch's adaptive windows to ``output_size`` (int, pair, None keeps
    that axis) (torch.nn.AdaptiveAvgPool2d); ``AdaptiveAvgPool2d(1)`` is global average
    pooling."""

    def forward(self, x):
        _check_input(self, x, 4)
        return naming_layer(self, F.adaptive_avg_pool2d, x, self.output_size)


class AdaptiveMaxPool2d(_Adaptive2d):
    """Maxima over torch's adaptive windows (torch.nn.AdaptiveMaxPool2d)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, x):
        _check_input(self, x, 4)
        return naming_layer(self, F.adaptive_max_pool2d, x, self.output_size,
                             self.return_indices)


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor`` (torch.nn.Upsample): ``F.interpolate``."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        self.size, self.scale_factor = size, scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, x):
        return naming_layer(self, F.interpolate, x, self.size, self.scale_factor, self.mode,
                             self.align_corners)

    def extra_repr(self):
        what = f"size={self.size!r}" if self.size is not None else \
            f"scale_factor={self.scale_factor!r}"
        return f"{what}, mode={self.mode!r}"


class _Pad2d(Module):
    mode = None  # F.pad's mode; set by subclasses

    def __init__(self, padding, value=None):
        super().__init__()
        amounts = tuple(padding) if isinstance(padding, (tuple, list)) else (padding,) * 4
        if len(amounts) != 4 or not all(isinstance(a, int) for a in amounts):
            raise TypeError(f"{type(self).__name__}: padding must be an int or 4 ints "
                            f"(left, right, top, bottom), got {padding!r}")
        self.padding, self.value = amounts, value

    def forward(self, x):
        return naming_layer(self, F.pad, x, self.padding, self.mode, self.value)

    def extra_repr(self):
        return f"{self.padding}" + ("" if self.value is None else f", value={self.value}")


class ZeroPad2d(_Pad2d):
    """Pad the last two dimensions with zeros (torch.nn.ZeroPad2d)."""
    mode = "constant"

    def __init__(self, padding):
        super().__init__(padding, 0.0)


class ConstantPad2d(_Pad2d):
    """Pad the last two dimensions with ``value`` (torch.nn.ConstantPad2d)."""
    mode = "constant"

    def __init__(self, padding, value):
        super().__init__(padding, value)


class ReflectionPad2d(_Pad2d):
    """Pad the last two dimensions by reflection (torch.nn.ReflectionPad2d)."""
    mode = "reflect"


class ReplicationPad2d(_Pad2d):
    """Pad the last two dimensions by repeating the edge (torch.nn.ReplicationPad2d)."""
    mode = "replicate"


class CircularPad2d(_Pad2d):
    """Pad the last two dimensions by wrapping around (torch.nn.CircularPad2d)."""
    mode = "circular"
