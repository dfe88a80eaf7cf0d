"""``MultiheadAttention`` (torch.nn.MultiheadAttention), with torch's parameter names
(``in_proj_weight``, ``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``) so
that a torch state dict loads as it is. Composed of ops; no gradient code here."""

import numpy as np

from .. import functional as F
from ..functional.attention import attend, attention_bias
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter


class MultiheadAttention(Module):
    """Attention of ``num_heads`` heads of ``embed_dim // num_heads`` features each.

    Inputs (L, N, E), or (N, L, E) with ``batch_first=True``, or unbatched (L, E).
    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` returns
    ``(output, weights)``: weights (N, L, S) averaged over the heads, (N, H, L, S)
    with ``average_attn_weights=False``, None with ``need_weights=False``. Boolean
    masks mark with True what may NOT be attended to (torch's rule here); float masks
    are added to the scores. ``dropout`` drops attention weights while training.
    ``kdim``/``vdim`` other than ``embed_dim``, ``add_bias_kv`` and ``add_zero_attn``
    are not supported (a clear error).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False):
        super().__init__()
        if embed_dim < 1 or num_heads < 1 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible "
                             f"by num_heads ({num_heads}), both positive")
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout}")
        if add_bias_kv or add_zero_attn or kdim not in (None, embed_dim) \
                or vdim not in (None, embed_dim):
            raise ValueError("MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim "
                             "other than embed_dim are not supported")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout, self.batch_first = dropout, batch_first
        self.in_proj_weight = Parameter(np.zeros((3 * embed_dim, embed_dim), np.float32))
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, np.float32)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias)
        init.xavier_uniform_(self.in_proj_weight)  # torch's _reset_parameters
        if bias:
            init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal is a hint that attn_mask is the "
                             "causal mask; pass that mask as attn_mask too (as torch)")
        batched = query.ndim == 3
        for name, t in (("query", query), ("key", key), ("value", value)):
            if t.ndim != query.ndim or t.ndim not in (2, 3) or t.shape[-1] != self.embed_dim:
                raise ValueError(f"{self!r}: {name} must be {'(N, L, E)' if self.batch_first else '(L, N, E)'} "
                                 f"or (L, E) like the query, with E = {self.embed_dim}; got "
                                 f"shape {tuple(t.shape)}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{self!r}: key and value shapes differ ({tuple(key.shape)} and "
                             f"{tuple(value.shape)})")
        q, k, v = (self._heads(t, i, batched) for i, t in enumerate((query, key, value)))
        n, length, source = q.shape[0], q.shape[2], k.shape[2]
        bias = self._mask_bias(attn_mask, key_padding_mask, q, n, length, source, batched)
        out, weights = attend(q, k, v, bias, self.dropout if self.training else 0.0)
        out = F.reshape(F.transpose(out, (0, 2, 1, 3)), (n, length, self.embed_dim))
        out = self.out_proj(out)
        if not batched:
            out = F.reshape(out, out.shape[1:])
        elif not self.batch_first:
            out = F.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = F.mean(weights, axis=1)
        return out, (weights if batched else F.reshape(weights, weights.shape[1:]))

    def _heads(self, x, which, batched):
        """The ``which``-th projection (query, key, value) of x as (N, H, length, D)."""
        if not batched:
            x = F.reshape(x, (1,) + x.shape)
        elif not self.batch_first:
            x = F.swapaxes(x, 0, 1)
        rows = slice(which * self.embed_dim, (which + 1) * self.embed_dim)
        weight = self.in_proj_weight[rows]
        bias = None if self.in_proj_bias is None else self.in_proj_bias[rows]
        x = F.linear(x, weight, bias)
        x = F.reshape(x, x.shape[:2] + (self.num_heads, self.head_dim))
        return F.transpose(x, (0, 2, 1, 3))

    def _mask_bias(self, attn_mask, key_padding_mask, like, n, length, source, batched):
        """attn_mask and key_padding_mask as one additive bias (N or 1, H or 1, L, S)."""
        bias = None
        if attn_mask is not None:
            bias = attention_bias(attn_mask, like, False, "attn_mask")
            heads = (n * self.num_heads, length, source)
            if bias.shape == (length, source):
                pass
            elif bias.shape == heads or (not batched and bias.shape == heads[1:]):
                bias = F.reshape(bias, (n, self.num_heads, length, source))
            else:
                raise ValueError(f"{self!r}: attn_mask must have shape ({length}, {source}) "
                                 f"or {heads}, got {tuple(bias.shape)}")
        if key_padding_mask is not None:
            padding = attention_bias(key_padding_mask, like, False, "key_padding_mask")
            expected = (n, source) if batched else (source,)
            if padding.shape != expected:
                raise ValueError(f"{self!r}: key_padding_mask must have shape {expected}, "
                                 f"got {tuple(padding.shape)}")
            padding = F.reshape(padding, (n, 1, 1, source))
            bias = padding if bias is None else F.add(bias, padding)
        return bias

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, " \
               f"dropout={self.dropout}, batch_first={self.batch_first}"


