"""Normalisation and channel dropout layers beyond the exercise's: ``LayerNorm``,
``GroupNorm``, ``BatchNorm1d``, ``Dropout2d`` (torch.nn's names and defaults)."""
import numpy as np

from .. import functional as F
from .layers import _BatchNorm, _naming_layer
from .module import Module
from .parameter import Parameter


def _affine_parameters(module, shape, weight, bias):
    module.weight = Parameter(np.ones(shape, dtype=np.float32)) if weight else None
    module.bias = Parameter(np.zeros(shape, dtype=np.float32)) if weight and bias else None


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` axes, then an elementwise
    ``weight`` (ones) and ``bias`` (zeros) of that shape if ``elementwise_affine``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
            else tuple(normalized_shape)
        if not shape or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be a positive int or a "
                             f"non-empty tuple of them, got {normalized_shape!r}")
        self.normalized_shape = tuple(int(n) for n in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        _affine_parameters(self, self.normalized_shape, elementwise_affine, bias)

    def forward(self, x):
        return _naming_layer(self, F.layer_norm, x, self.normalized_shape, self.weight,
                             self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, " \
               f"elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Normalise each sample's channels in ``num_groups`` groups; per-channel affine."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups ({num_groups}) must be positive and "
                             f"divide num_channels ({num_channels})")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = eps, affine
        _affine_parameters(self, (self.num_channels,), affine, True)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_channels}, "
                             f"...), got shape {tuple(x.shape)}")
        return _naming_layer(self, F.group_norm, x, self.num_groups, self.weight, self.bias,
                             self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input over its channels."""

    ndims, layout = (2, 3), "(N, {C}) or (N, {C}, L)"


class Dropout2d(Module):
    """Zero whole channels with probability ``p`` while training (torch.nn.Dropout2d);
    the masks come from ``minigrad.random``, so ``minigrad.random.seed`` repeats them."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout2d: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x):
        return _naming_layer(self, F.dropout2d, x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
