"""Fused optimizer updates (Numba): one pass over each parameter per step.

Same signatures and the same arithmetic, operation by operation and in the
parameter's precision, as ``kernels.reference.optim`` (PyTorch's single-tensor
path), so the results agree to the last bit in practice; the reference makes
several full-size temporaries per step where these make none. Hyper-parameters
are rounded to the parameter's dtype first, as NumPy does with Python scalars.
Parameters that are not contiguous float32/float64 arrays, or whose gradient or
state has another dtype, go to the reference update (same results, any layout).
"""
import math

import numpy as np
from numba import prange

from ..reference import optim as reference

from .._fallback import falls_back_to
from .._xp import FLOAT_DTYPES
from ._jit import cpu_kernel


@cpu_kernel
def _sgd(param, grad, buf, lr, momentum, dampening_complement, weight_decay,
         use_weight_decay, use_momentum, nesterov, first_step):
    for i in prange(param.size):
        g = grad[i]
        if use_weight_decay:
            g = g + weight_decay * param[i]
        if use_momentum:
            if first_step:
                b = g
            else:
                b = buf[i] * momentum
                b = b + dampening_complement * g
            buf[i] = b
            if nesterov:
                g = g + momentum * b
            else:
                g = b
        param[i] = param[i] - lr * g


@cpu_kernel
def _adam(param, grad, exp_avg, exp_avg_sq, one_minus_beta1, beta2, one_minus_beta2,
          eps, weight_decay, use_weight_decay, decoupled, decay_factor, step_size,
          bias_correction2_sqrt):
    for i in prange(param.size):
        g = grad[i]
        p = param[i]
        if use_weight_decay:
            if decoupled:
                p = p * decay_factor
            else:
                g = g + weight_decay * p
        m = exp_avg[i]
        m = m + one_minus_beta1 * (g - m)
        v = exp_avg_sq[i] * beta2
        v = v + one_minus_beta2 * (g * g)
        exp_avg[i] = m
        exp_avg_sq[i] = v
        denom = math.sqrt(v) / bias_correction2_sqrt + eps
        param[i] = p - step_size * (m / denom)


@cpu_kernel
def _rmsprop(param, grad, square_avg, buf, grad_avg, lr, alpha, one_minus_alpha, eps,
             weight_decay, use_weight_decay, momentum, use_momentum, centered):
    for i in prange(param.size):
        g = grad[i]
        if use_weight_decay:
            g = g + weight_decay * param[i]
        s = square_avg[i] * alpha
        s = s + one_minus_alpha * (g * g)
        square_avg[i] = s
        if centered:
            a = grad_avg[i]
            a = a + one_minus_alpha * (g - a)
            grad_avg[i] = a
            avg = math.sqrt(s - a * a)
        else:
            avg = math.sqrt(s)
        avg = avg + eps
        if use_momentum:
            b = buf[i] * momentum
            b = b + g / avg
            buf[i] = b
            param[i] = param[i] - lr * b
        else:
            param[i] = param[i] - lr * (g / avg)


@cpu_kernel
def _adagrad(param, grad, state_sum, clr, eps, weight_decay, use_weight_decay):
    for i in prange(param.size):
        g = grad[i]
        if use_weight_decay:
            g = g + weight_decay * param[i]
        s = state_sum[i] + g * g
        state_sum[i] = s
        std = math.sqrt(s) + eps
        param[i] = param[i] - clr * (g / std)


def _fusable(param, *arrays):
    """True when the fused loops take these arrays: ``param`` float32/float64 and each
    array (None: not given) a C-contiguous NumPy array of its shape and dtype, so that
    the flat views alias the originals, for the in-place writes."""
    dtype, shape = param.dtype, param.shape
    return dtype in FLOAT_DTYPES and all(
        array is None or (isinstance(array, np.ndarray) and array.dtype == dtype
                          and array.shape == shape and array.flags.c_contiguous)
        for array in (param,) + arrays)


def _flat(*arrays):
    """1-D views of the arrays (checked by ``_fusable``); the first, the parameter,
    stands in for a None, which the kernel never reads: one signature for all calls."""
    return [(arrays[0] if array is None else array).reshape(-1) for array in arrays]


@falls_back_to(reference.sgd_update, arrays=("param", "grad", "momentum_buffer"),
               accepts=_fusable)
def sgd_update(param, grad, momentum_buffer, *, lr, momentum, dampening, nesterov,
               weight_decay, first_step):
    """In-place SGD step; see ``kernels.reference.optim.sgd_update``."""
    views = _flat(param, grad, momentum_buffer if momentum != 0 else None)
    cast = param.dtype.type
    _sgd(*views, cast(lr), cast(momentum), cast(1 - dampening), cast(weight_decay),
         weight_decay != 0, momentum != 0, bool(nesterov), bool(first_step))


@falls_back_to(reference.adam_update, arrays=("param", "grad", "exp_avg", "exp_avg_sq"),
               accepts=_fusable)
def adam_update(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                step, decoupled_weight_decay):
    """In-place Adam/AdamW step; see ``kernels.reference.optim.adam_update``."""
    views = _flat(param, grad, exp_avg, exp_avg_sq)
    cast = param.dtype.type
    # The scalars the reference computes in Python (double) before NumPy rounds them.
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    _adam(*views, cast(1 - beta1), cast(beta2), cast(1 - beta2), cast(eps),
          cast(weight_decay), weight_decay != 0, bool(decoupled_weight_decay),
          cast(1 - lr * weight_decay), cast(lr / bias_correction1),
          cast(bias_correction2_sqrt))


@falls_back_to(reference.rmsprop_update,
               arrays=("param", "grad", "square_avg", "momentum_buffer", "grad_avg"),
               accepts=_fusable)
def rmsprop_update(param, grad, square_avg, momentum_buffer, grad_avg, *, lr, alpha, eps,
                   weight_decay, momentum, centered):
    """In-place RMSprop step; see ``kernels.reference.optim.rmsprop_update``."""
    views = _flat(param, grad, square_avg, momentum_buffer if momentum > 0 else None,
                  grad_avg if centered else None)
    cast = param.dtype.type
    _rmsprop(*views, cast(lr), cast(alpha), cast(1 - alpha), cast(eps), cast(weight_decay),
             weight_decay != 0, cast(momentum), momentum > 0, bool(centered))


@falls_back_to(reference.adagrad_update, arrays=("param", "grad", "state_sum"),
               accepts=_fusable)
def adagrad_update(param, grad, state_sum, *, lr, eps, weight_decay, lr_decay, step):
    """In-place Adagrad step; see ``kernels.reference.optim.adagrad_update``."""
    views = _flat(param, grad, state_sum)
    cast = param.dtype.type
    clr = lr / (1 + (step - 1) * lr_decay)
    _adagrad(*views, cast(clr), cast(eps), cast(weight_decay), weight_decay != 0)
