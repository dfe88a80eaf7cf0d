"""Normalisation and regularisation: ``batch_norm``, ``dropout``."""
import math

from .. import backend
from .. import random as mg_random
from ._core import _record, _xp


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    seed, offset = mg_random.take_offsets(x.size)
    mask = backend.kernel("dropout_mask", x.device)(x.shape, p, seed, offset, x.dtype)

    def dropout_backward(g):
        return (g * mask,)
    return _record(x.data * mask, (x,), dropout_backward)


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
