"""DistributedDataParallel: one model replica per rank, gradients averaged after backward.

As PyTorch's: every rank builds the same model, wraps it, and feeds it its own shard of
each batch (``data.DistributedSampler``); ``loss.backward()`` returns with every
gradient averaged over the ranks, so each rank's optimizer takes the same step and the
replicas stay equal. The wrapper registers the model as its child ``module``, so its
``state_dict()`` keys carry PyTorch's ``"module."`` prefix; save ``ddp.module`` (as
``fit`` does) for a file that loads into the plain model.
"""
import contextlib

import numpy as np

from .. import backend
from .. import distributed as dist
from ..distributed.process_group import ReduceOp, reduce_array
from ..functional import _record
from ..tensor import Tensor, is_grad_enabled, queue_callback
from .module import Module

__all__ = ["DistributedDataParallel"]


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the initialized process group.

    At wrap time rank 0's parameters and buffers are broadcast to every rank. After each
    backward through the wrapper's output, the gradients are averaged across ranks in
    buckets of up to ``bucket_cap_mb`` megabytes: each bucket is copied into one
    contiguous buffer, all-reduced in one collective, and copied back. A parameter that
    this rank left without a gradient takes part with zeros and receives the average, so
    every rank's optimizer sees the same gradients. With ``broadcast_buffers`` (PyTorch's
    default) rank 0's buffers (BatchNorm's running statistics) are sent to every rank at
    each forward; the batch statistics a BatchNorm normalises with stay per rank (use
    ``nn.SyncBatchNorm.convert_sync_batchnorm`` to share them).

    Every rank must call forward and backward the same number of times (the collectives
    pair up across ranks); ``DistributedSampler`` gives every rank the same step count.
    """

    def __init__(self, module, bucket_cap_mb=25, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel needs a process group: call "
                               "minigrad.distributed.init_process_group() first")
        if not bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be positive, got {bucket_cap_mb!r}")
        self.module = module
        self.bucket_cap_mb = bucket_cap_mb
        self.broadcast_buffers = bool(broadcast_buffers)
        self.require_backward_grad_sync = True
        # Buckets in reverse registration order (roughly the order backward produces
        # gradients, as PyTorch's), grouped so that one bucket holds one dtype and device.
        self._buckets = _buckets([p for p in module.parameters() if p.requires_grad],
                                 int(bucket_cap_mb * 2 ** 20))
        self._sync_state(broadcast_all=True)

    @property
    def bucket_sizes(self):
        """Parameters per bucket (one all-reduce each), for inspection and tests."""
        return [len(bucket) for bucket in self._buckets]

    def _sync_state(self, broadcast_all):
        """Send rank 0's buffers (and at wrap time its parameters) to every rank."""
        if dist.get_world_size() == 1:
            return
        arrays = [array for _, array in self.module.named_buffers()]
        if broadcast_all:
            arrays += [p.data for p in self.module.parameters()]
        for array in arrays:
            dist.broadcast(array, src=0)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate gradients locally; the first backward
        after it averages everything accumulated (gradient accumulation)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def forward(self, *inputs):
        if self.broadcast_buffers:
            self._sync_state(broadcast_all=False)
        output = self.module(*inputs)
        if not (is_grad_enabled() and self.require_backward_grad_sync):
            return output
        return self._mark_for_reduction(output)

    def _mark_for_reduction(self, output):
        """``output`` through an identity op whose backward queues the gradient all-reduce
        for the end of the backward pass."""
        def queue_reduction(g):
            queue_callback(self._reduce_gradients)  # once per backward, however many outputs
            return (g,)

        def mark(t):
            if isinstance(t, Tensor) and t.requires_grad:
                return _record(t.data, (t,), queue_reduction, name="DistributedDataParallel")
            return t
        if isinstance(output, (tuple, list)):
            return type(output)(mark(t) for t in output)
        return mark(output)

    def _reduce_gradients(self):
        """Average every parameter's gradient across ranks, one all-reduce per bucket."""
        for bucket in self._buckets:
            bucket.all_reduce_gradients()

    def extra_repr(self):
        return f"world_size={dist.get_world_size()}, buckets={len(self._buckets)}"


class _Bucket:
    """Parameters of one dtype and device whose gradients travel in one flat buffer."""

    def __init__(self, params):
        self.params = params
        xp = backend.array_module(params[0].data)
        self.flat = xp.empty(sum(p.size for p in params), dtype=params[0].dtype)

    def __len__(self):
        return len(self.params)

    def all_reduce_gradients(self):
        offset = 0
        views = []
        for p in self.params:
            view = self.flat[offset:offset + p.size]
            offset += p.size
            if p.grad is None:
                view[...] = 0
            else:
                view[...] = p.grad.reshape(-1)
            views.append(view)
        reduce_array(self.flat, ReduceOp.AVG)
        for p, view in zip(self.params, views):
            if p.grad is None or p.grad.dtype != view.dtype:
                p.grad = view.reshape(p.shape).copy()  # owned: the buffer is reused
            else:
                p.grad[...] = view.reshape(p.shape)


def _buckets(params, cap_bytes):
    """Group ``params`` (last first) into buckets of one dtype and device, each at most
    ``cap_bytes`` unless a single parameter is larger."""
    closed, open_ = [], {}  # open_: (dtype, device) -> (parameters, their bytes)
    for p in reversed(params):
        key = (np.dtype(p.dtype), p.device)
        members, size = open_.get(key, ([], 0))
        if members and size + p.data.nbytes > cap_bytes:
            closed.append(members)
            members, size = [], 0
        open_[key] = (members + [p], size + p.data.nbytes)
    return [_Bucket(members) for members in closed + [m for m, _ in open_.values()]]
