"""Attention: ``scaled_dot_product_attention`` (torch.nn.functional's), composed of
differentiable ops (matmul, softmax, dropout), so its gradient needs no code here."""
import math

from .. import backend
from ..creation import constant_like
from ..tensor import Tensor
from ._core import _same_device
from .activation import softmax
from .elementwise import add, matmul, mul
from .norm import dropout
from .shape import swapaxes


def attention_bias(mask, like, allowed_when_true, what):
    """``mask`` as a constant additive bias in ``like``'s dtype and device.

    A boolean mask gives 0 where attention is allowed and -inf where it is not: True
    means allowed when ``allowed_when_true`` (scaled_dot_product_attention), blocked
    otherwise (MultiheadAttention's masks). A float mask is added as it is.
    """
    mask = constant_like(mask, like)
    _same_device(what, mask, like)
    if mask.dtype.kind == "b":
        xp = backend.xp_for(like.device)
        blocked = ~mask.data if allowed_when_true else mask.data
        return Tensor(xp.where(blocked, -math.inf, 0).astype(like.dtype))
    if mask.dtype.kind != "f":
        raise TypeError(f"{what} must be boolean or floating-point, got dtype {mask.dtype}")
    return Tensor(mask.data.astype(like.dtype, copy=False))


def causal_bias(length, source_length, like):
    """The bias of a causal mask: query i may attend to keys 0..i (torch's tril)."""
    xp = backend.xp_for(like.device)
    allowed = xp.tril(xp.ones((length, source_length), dtype=bool))
    return attention_bias(allowed, like, True, "is_causal")


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(query @ key^T * scale + mask) @ value over the last two axes.

    query (..., L, E), key (..., S, E), value (..., S, Ev); the leading axes
    broadcast. ``attn_mask``: boolean (True: may attend) or float (added), broadcast
    to (..., L, S). ``is_causal``: the lower-triangular mask (not with attn_mask).
    ``scale`` defaults to 1/sqrt(E). ``dropout_p`` drops attention weights, always
    (as torch; pass 0.0 when evaluating). A row with every key masked gives NaN, as torch.
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if t.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: {name} needs at least 2 axes "
                             f"(..., sequence, features), got shape {t.shape}")
    _same_device("scaled_dot_product_attention", query, key, value)
    if enable_gqa:
        raise ValueError("scaled_dot_product_attention: enable_gqa is not supported")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: query and key feature sizes differ "
                         f"(shapes {query.shape} and {key.shape})")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key and value lengths differ "
                         f"(shapes {key.shape} and {value.shape})")
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass attn_mask or is_causal, not both")
    if not 0 <= dropout_p < 1:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), "
                         f"got {dropout_p}")
    if is_causal:
        bias = causal_bias(query.shape[-2], key.shape[-2], query)
    else:
        bias = None if attn_mask is None else attention_bias(attn_mask, query, True, "attn_mask")
    return attend(query, key, value, bias, dropout_p, scale)[0]


def attend(query, key, value, bias=None, dropout_p=0.0, scale=None):
    """(softmax(query @ key^T * scale + bias) @ value, those softmax weights), the
    weights after dropout; the one body of scaled_dot_product_attention and of
    ``nn.MultiheadAttention``, which also returns the weights."""
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = mul(matmul(query, swapaxes(key, -2, -1)), scale)
    if bias is not None:
        try:
            scores = add(scores, bias)
        except ValueError:
            raise ValueError(f"attention: a mask of shape {bias.shape} does not broadcast to "
                             f"the attention scores' shape {scores.shape}") from None
    weights = softmax(scores, -1)
    if dropout_p:
        weights = dropout(weights, dropout_p)
    return matmul(weights, value), weights
