"""Convolution: ``conv2d`` through the device's kernel table."""
from .. import backend
from ._core import _check_bias, _pair, _record, _same_device
from .shape import getitem



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
