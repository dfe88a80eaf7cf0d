"""Gradient clipping (torch.nn.utils): ``clip_grad_norm_`` and ``clip_grad_value_``.

Both work on the gradient arrays in place, in the parameters' array module, so on a
GPU nothing is read back to the host (the total norm comes back as a 0-d tensor).
"""
import math

import numpy as np

from .. import backend
from ..tensor import Tensor


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale the gradients so that their joint ``norm_type``-norm is at most ``max_norm``.

    The norm is that of all gradients taken together as one vector (``inf``: the
    largest magnitude). Returns that total norm, before clipping, as a 0-d tensor.
    The scale is ``max_norm / (total + 1e-6)``, capped at 1, as torch.
    ``error_if_nonfinite=True`` raises when the total is NaN or infinite (a check that
    reads the norm back to the host); ``foreach`` is accepted and changes nothing.
    """
    max_norm, norm_type = _real(max_norm, "max_norm"), _real(norm_type, "norm_type")
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.zeros((), np.float32))  # torch's tensor(0.)
    xp = backend.array_module(grads[0])
    if norm_type == math.inf:
        norms = [xp.abs(g).max() if g.size else xp.zeros((), g.dtype) for g in grads]
        total = xp.max(xp.stack(norms))
    else:
        norms = [(xp.abs(g) ** norm_type).sum() ** (1 / norm_type) for g in grads]
        total = (xp.stack(norms) ** norm_type).sum() ** (1 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is {float(total)}, so they cannot be clipped; pass "
                           f"error_if_nonfinite=False to scale them anyway")
    coefficient = xp.minimum(max_norm / (total + 1e-6), 1.0).astype(total.dtype)
    for g in grads:
        g *= coefficient.astype(g.dtype)
    return Tensor(total)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clip every gradient element into [-clip_value, clip_value], in place."""
    clip_value = _real(clip_value, "clip_value")
    for g in _grads(parameters):
        backend.array_module(g).clip(g, -clip_value, clip_value, out=g)


def _real(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise TypeError(f"{what} must be a real number, got {value!r}")
    return float(value)
