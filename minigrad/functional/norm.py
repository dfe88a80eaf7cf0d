"""Normalisation and regularisation: ``batch_norm``, ``layer_norm``, ``group_norm``,
``dropout``, ``dropout2d``."""
import math

from .. import backend
from .. import random as mg_random
from ..utils import is_int
from ._core import _record, _xp
from .elementwise import add, mul
from .shape import reshape


def dropout(x, p=0.5, training=True, inplace=False):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p).

    ``inplace`` is accepted (torch's argument) and ignored: the result is a new tensor."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    return _masked(x, x.shape, p)


def _masked(x, mask_shape, p):
    """``x`` times a dropout mask of ``mask_shape`` (broadcast over the rest), drawn
    from ``minigrad.random``'s stream so that seeding reproduces it on either device."""
    seed, offset = mg_random.take_offsets(math.prod(mask_shape))
    mask = backend.kernel("dropout_mask", x.device)(mask_shape, p, seed, offset, x.dtype)

    def dropout_backward(g):
        return (g * mask,)
    return _record(x.data * mask, (x,), dropout_backward, "dropout")


def dropout2d(x, p=0.5, training=True, inplace=False):
    """Zero whole channels with probability ``p`` (torch.nn.functional.dropout2d).

    Input (N, C, H, W): one keep/drop draw per (sample, channel), the kept channels
    scaled by 1/(1-p). A 3-D input (N, C, L) is masked per (N, C) too, which is what
    torch does with it today (with a warning). ``inplace`` is ignored.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout2d probability must be in [0, 1), got {p}")
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D or 4-D input (N, C, H, W), got shape "
                         f"{x.shape}")
    if not training or p == 0:
        return x
    return _masked(x, x.shape[:2] + (1,) * (x.ndim - 2), p)


def _standardize(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance), with one fused
    backward: the gradient through the mean and the variance in closed form."""
    mu = x.data.mean(axis=axes, keepdims=True)
    centred = x.data - mu
    var = (centred * centred).mean(axis=axes, keepdims=True)
    inv_std = (1 / _xp(x).sqrt(var + eps)).astype(x.dtype, copy=False)
    x_hat = centred * inv_std

    def standardize_backward(g):
        return (inv_std * (g - g.mean(axis=axes, keepdims=True)
                           - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)),)
    return _record(x_hat, (x,), standardize_backward)


def _affine(x_hat, weight, bias, shape):
    """x_hat * weight + bias, each (if not None) reshaped to ``shape`` to broadcast."""
    if weight is not None:
        x_hat = mul(x_hat, reshape(weight, shape))
    if bias is not None:
        x_hat = add(x_hat, reshape(bias, shape))
    return x_hat


def _check_eps(eps, op):
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"{op}: eps must be a non-negative number, got {eps!r}")


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the last ``len(normalized_shape)`` axes, which must have that
    shape; then scale by ``weight`` and shift by ``bias`` (each of that shape)."""
    shape = (normalized_shape,) if is_int(normalized_shape) else tuple(normalized_shape)
    if not shape or not all(is_int(n) and n > 0 for n in shape):
        raise ValueError(f"layer_norm: normalized_shape must be a positive int or a non-empty "
                         f"tuple of them, got {normalized_shape!r}")
    _check_eps(eps, "layer_norm")
    if x.shape[x.ndim - len(shape):] != shape or x.ndim < len(shape):
        raise ValueError(f"layer_norm: an input of shape {x.shape} does not end in "
                         f"normalized_shape {shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != shape:
            raise ValueError(f"layer_norm: {name} has shape {t.shape}, expected {shape}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    return _affine(_standardize(x, axes, eps), weight, bias, shape)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each sample's channels (axis 1) in ``num_groups`` groups, over the
    group's channels and every position; then a per-channel ``weight`` and ``bias``."""
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected an input (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    if not is_int(num_groups) or num_groups < 1 or channels % num_groups:
        raise ValueError(f"group_norm: num_groups must be a positive int dividing the "
                         f"{channels} channels, got {num_groups!r}")
    _check_eps(eps, "group_norm")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"group_norm: {name} has shape {t.shape}, expected ({channels},)")
    grouped = reshape(x, (x.shape[0], num_groups, -1))
    x_hat = reshape(_standardize(grouped, (2,), eps), x.shape)
    return _affine(x_hat, weight, bias, (1, channels) + (1,) * (x.ndim - 2))


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
