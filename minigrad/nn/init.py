"""Weight initialisation schemes (torch.nn.init): He (Kaiming) and Glorot (Xavier).

Each ``*_`` function fills a Parameter in place from minigrad's seeded generator
(``minigrad.manual_seed``) and returns it.
"""
import math

import numpy as np

from .. import backend
from ..random import generator


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for an activation, as torch.nn.init.calculate_gain."""
    if nonlinearity in ("linear", "conv2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(shape):
    """(fan_in, fan_out) of a weight: (out, in) or (out, in, kh, kw)."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 axes, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(param, values):
    xp = backend.array_module(param.data)
    param.data[...] = xp.asarray(values, dtype=param.dtype)
    return param


def uniform_(param, low=0.0, high=1.0):
    return _fill(param, generator().uniform(low, high, param.shape))


def normal_(param, mean=0.0, std=1.0):
    return _fill(param, generator().normal(mean, std, param.shape))


def constant_(param, value):
    param.data[...] = value
    return param


def zeros_(param):
    return constant_(param, 0)


def ones_(param):
    return constant_(param, 1)


def _fan(param, mode):
    fan_in, fan_out = fan_in_and_fan_out(param.shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He uniform: U(-b, b), b = gain * sqrt(3 / fan)."""
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(param, mode))
    return uniform_(param, -bound, bound)


def kaiming_normal_(param, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He normal: N(0, std^2), std = gain / sqrt(fan)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(param, mode))
    return normal_(param, 0.0, std)


def xavier_uniform_(param, gain=1.0):
    """Glorot uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(param.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(param, -bound, bound)


def xavier_normal_(param, gain=1.0):
    """Glorot normal: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(param.shape)
    return normal_(param, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


# Keras-style names for the same schemes.
he_uniform_, he_normal_ = kaiming_uniform_, kaiming_normal_
glorot_uniform_, glorot_normal_ = xavier_uniform_, xavier_normal_


def default_init_(weight, bias):
    """PyTorch's default for Linear and Conv2d: kaiming_uniform(a=sqrt(5)), bias U(+-1/sqrt(fan_in))."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(fan_in_and_fan_out(weight.shape)[0])
        uniform_(bias, -bound, bound)
