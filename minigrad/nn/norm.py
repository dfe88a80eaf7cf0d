"""Normalisation and channel dropout layers (torch.nn's names and defaults):
``BatchNorm2d``, ``BatchNorm1d``, ``SyncBatchNorm`` (statistics over every rank's
batch), ``LayerNorm``, ``GroupNorm``, ``Dropout2d``."""
import numpy as np

from .. import distributed as dist
from .. import functional as F
from .layer_utils import naming_layer
from .module import Module
from .parameter import Parameter


def _affine_parameters(module, shape, weight, bias):
    module.weight = Parameter(np.ones(shape, dtype=np.float32)) if weight else None
    module.bias = Parameter(np.zeros(shape, dtype=np.float32)) if weight and bias else None


class _BatchNorm(Module):
    """Batch normalisation over axis 1 (the channels), with running statistics."""

    ndims, layout = (), ""  # the input ranks taken, and how to name them; set by subclasses

    input_rank = 4

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32)) if affine else None
        self.register_buffer("running_mean", np.zeros(num_features, dtype=np.float32))
        self.register_buffer("running_var", np.ones(num_features, dtype=np.float32))
        self.register_buffer("num_batches_tracked", np.zeros((), dtype=np.int64))

    def forward(self, x):
        self._check_input(x)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            self.training, self.momentum, self.eps)

    def _check_input(self, x):
        """Refuse a wrongly shaped input; count the training batch (as torch does)."""
        if x.ndim not in self.ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape "
                             f"{self.layout.format(C=self.num_features)}, "
                             f"got shape {tuple(x.shape)}")
        if self.training and self._buffers["num_batches_tracked"] is not None:
            self._buffers["num_batches_tracked"] += 1

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over the channels of NCHW input, with running statistics."""

    ndims, layout = (4,), "(N, {C}, H, W)"


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch (every rank's
    shard together), through differentiable all-reduces, so that gradients flow across
    ranks as they would through one big batch. Outside training, or with no process
    group of more than one rank, it is a BatchNorm2d. Opt in with
    :meth:`convert_sync_batchnorm`; it costs three small collectives per layer forward
    and two backward.
    """

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input(x)
        count = np.array([x.shape[0] * x.shape[2] * x.shape[3]], dtype=np.int64)
        dist.all_reduce(count)
        total = int(count[0])
        if total < 2:
            raise ValueError(f"{self!r}: expected more than 1 value per channel over all "
                             f"ranks when training, got input of shape {tuple(x.shape)}")
        axes, shape = (0, 2, 3), (1, self.num_features, 1, 1)
        # Two passes (mean, then the centred squares): no E[x^2] - mean^2 cancellation.
        mean = dist.functional.all_reduce(x.sum(axis=axes)) / total
        centered = x - mean.reshape(shape)
        var = dist.functional.all_reduce((centered * centered).sum(axis=axes)) / total
        if self.running_mean is not None:
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean.data
            self.running_var *= 1 - m
            self.running_var += m * var.data * total / (total - 1)  # unbiased, as torch
        y = centered * ((var + self.eps) ** -0.5).reshape(shape)
        if self.weight is not None:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """``module`` with every BatchNorm2d replaced by a SyncBatchNorm that shares its
        parameters, buffers and mode (PyTorch's name); returns the converted module."""
        if isinstance(module, BatchNorm2d) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum,
                       affine=module.weight is not None)
            if module.weight is not None:
                sync.weight, sync.bias = module.weight, module.bias
            sync._buffers.update(module._buffers)
            object.__setattr__(sync, "training", module.training)
            return sync
        for name, child in module._modules.items():
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child)
        return module


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
        return naming_layer(self, F.layer_norm, x, self.normalized_shape, self.weight,
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
        return naming_layer(self, F.group_norm, x, self.num_groups, self.weight, self.bias,
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
        return naming_layer(self, F.dropout2d, x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"
