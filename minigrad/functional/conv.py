"""Convolution: ``conv2d`` (groups, dilation), ``conv1d`` and ``conv_transpose2d``
through the device's kernel table."""
from .. import backend
from .._kernels import kernel_module
from ..utils import is_int, pair
from ._core import _check_bias, _record, _same_device
from .activation import _activation
from .shape import getitem, reshape

check_activation = kernel_module("reference.activation").check_activation
output_size = kernel_module("reference.windows").output_size


def _check_nchw(x, what):
    if x.ndim != 4:
        raise ValueError(f"{what}: expected a 4-D input (N, C, H, W), got shape {x.shape}")


def conv_padding(padding, kernel, stride, dilation=(1, 1)):
    """conv2d's ``padding`` -> ((ph, pw), (crop_h, crop_w)) for the symmetric kernels.

    ``"valid"`` is no padding. ``"same"`` (stride 1 only, as torch) keeps the spatial
    size: the kernel spans d*(k-1) + 1 elements, so d*(k-1) must be padded in all,
    half on each side; when that is odd torch pads one more row (column) at the bottom
    (right) than at the top (left), which symmetric padding of the larger half and
    dropping the output's first row (column) gives.
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
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t + 1) // 2 for t in total), tuple(t % 2 for t in total)
    return pair(padding, "padding", "conv2d", 0), (0, 0)


def _check_groups(op, groups, in_channels, out_channels):
    """``groups`` as an int that divides both channel counts, or a clear error."""
    if not is_int(groups) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    for what, count in (("in_channels", in_channels), ("out_channels", out_channels)):
        if count % groups:
            raise ValueError(f"{op}: {what} ({count}) must be divisible by groups ({groups})")
    return int(groups)


def _check_weight(op, weight, layout):
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D {layout}, got shape {weight.shape}")
    if min(weight.shape) < 1:
        raise ValueError(f"{op}: weight of shape {weight.shape} is empty (kernel size and "
                         f"channel counts must be at least 1)")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None):
    """2-D cross-correlation of NCHW ``x`` with ``weight`` (out_channels,
    in_channels/groups, kH, kW), as torch.nn.functional.conv2d.

    ``padding`` is an int, a pair, ``"valid"`` (none) or ``"same"`` (output as large
    as the input; stride 1). ``dilation`` spaces the kernel's taps apart; ``groups``
    splits the channels into that many independent convolutions (``groups ==
    in_channels`` is a depthwise convolution). ``activation`` ("relu", "tanh",
    "sigmoid" or None) is applied by the convolution's own kernel, in the pass that
    adds the bias (where the kernel fuses it: groups 1, dilation 1): the same numbers
    as ``relu(conv2d(...))`` without a pass over the output of its own.
    """
    _check_nchw(x, "conv2d")
    _same_device("conv2d", x, weight, bias)
    _check_weight("conv2d", weight, "(out_channels, in_channels/groups, kH, kW)")
    groups = _check_groups("conv2d", groups, x.shape[1], weight.shape[0])
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels (shape {x.shape}) but "
                         f"weight expects {weight.shape[1] * groups} (weight shape "
                         f"{weight.shape}, groups={groups})")
    check_activation(activation, "conv2d")
    kh, kw = weight.shape[2:]
    _check_bias("conv2d", bias, weight.shape[0])
    stride = pair(stride, "stride", "conv2d", 1)
    dilation = pair(dilation, "dilation", "conv2d", 1)
    padding, crop = conv_padding(padding, (kh, kw), stride, dilation)
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    if x.shape[2] + 2 * padding[0] < span[0] or x.shape[3] + 2 * padding[1] < span[1]:
        raise ValueError(f"conv2d: input of spatial size {x.shape[2:]} with padding {padding} "
                         f"is smaller than the kernel {span} (its extent with dilation {dilation})")
    b = None if bias is None else bias.data
    inputs = (x, weight) if bias is None else (x, weight, bias)
    if groups == 1 and dilation == (1, 1):  # the exercise's path: the tuned kernels
        forward, backward = backend.kernels("conv2d_forward", "conv2d_backward",
                                            device=x.device)
        y, cache = forward(x.data, weight.data, b, stride, padding, activation)
        activation = None
    else:
        forward, backward = backend.kernels("conv2d_general_forward",
                                            "conv2d_general_backward", device=x.device)
        y, cache = forward(x.data, weight.data, b, stride, padding, dilation, groups)

    def conv2d_backward(g):
        gx, gw, gb = backward(g, cache, x.requires_grad)
        return gx, gw, gb
    out = _record(y, inputs, conv2d_backward)
    if crop != (0, 0):  # "same" with an odd total padding: see conv_padding
        out = getitem(out, (slice(None), slice(None), slice(crop[0], None),
                            slice(crop[1], None)))
    return out if activation is None else _activation(activation, out)


def _single(value, what, op, minimum):
    """An int or a 1-tuple -> the int, or a clear error (conv1d's arguments)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise TypeError(f"{op}: {what} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    return pair(value, what, op, minimum)[0]


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation of (N, C, L) ``x`` with ``weight`` (out_channels,
    in_channels/groups, K), as torch.nn.functional.conv1d: conv2d on a height of one."""
    if x.ndim != 3:
        raise ValueError(f"conv1d: expected a 3-D input (N, C, L), got shape {x.shape}")
    if weight.ndim != 3:
        raise ValueError(f"conv1d: weight must be 3-D (out_channels, in_channels/groups, K), "
                         f"got shape {weight.shape}")
    stride = (1, _single(stride, "stride", "conv1d", 1))
    dilation = (1, _single(dilation, "dilation", "conv1d", 1))
    if not isinstance(padding, str):
        padding = (0, _single(padding, "padding", "conv1d", 0))
    n, c, length = x.shape
    y = conv2d(reshape(x, (n, c, 1, length)), reshape(weight, weight.shape[:2] + (1, weight.shape[2])),
               bias, stride, padding, dilation, groups)
    return reshape(y, (n, y.shape[1], y.shape[3]))


def conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation):
    """Output length of a transposed convolution along one axis (torch's formula)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution (torch.nn.functional.conv_transpose2d, same argument
    order): the gradient of conv2d with respect to its input, as a layer that grows
    the image. ``weight`` is (in_channels, out_channels/groups, kH, kW); the output's
    height is (H-1)*stride - 2*padding + dilation*(kH-1) + output_padding + 1.
    """
    op = "conv_transpose2d"
    _check_nchw(x, op)
    _same_device(op, x, weight, bias)
    _check_weight(op, weight, "(in_channels, out_channels/groups, kH, kW)")
    groups = _check_groups(op, groups, x.shape[1], weight.shape[0])
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"{op}: input has {x.shape[1]} channels (shape {x.shape}) but "
                         f"weight expects {weight.shape[0]} (weight shape {weight.shape})")
    out_ch = weight.shape[1] * groups
    _check_bias(op, bias, out_ch)
    stride = pair(stride, "stride", op, 1)
    padding = pair(padding, "padding", op, 0)
    output_padding = pair(output_padding, "output_padding", op, 0)
    dilation = pair(dilation, "dilation", op, 1)
    for o, s, d in zip(output_padding, stride, dilation):
        if o >= s and o >= d:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    out_hw = tuple(conv_transpose_output_size(x.shape[2 + a], weight.shape[2 + a], stride[a],
                                              padding[a], output_padding[a], dilation[a])
                   for a in range(2))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: input of spatial size {x.shape[2:]} gives an output of "
                         f"size {out_hw}; reduce the padding {padding}")
    # Each input pixel must be a window of the convolution this is the adjoint of.
    assert all(output_size(out_hw[a], weight.shape[2 + a], stride[a], padding[a],
                           dilation[a]) >= x.shape[2 + a] for a in range(2))
    forward, backward = backend.kernels("conv_transpose2d_forward",
                                        "conv_transpose2d_backward", device=x.device)
    y, cache = forward(x.data, weight.data, None if bias is None else bias.data, stride,
                       padding, dilation, groups, out_hw)

    def conv_transpose2d_backward(g):
        gx, gw, gb = backward(g, cache, x.requires_grad)
        return gx, gw, gb
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return _record(y, inputs, conv_transpose2d_backward)
