"""``fit`` and ``evaluate`` over the ranks of a process group (``distributed=True``).

Each rank trains on its own shard of every epoch (a :class:`~minigrad.data.DistributedSampler`)
through :class:`~minigrad.nn.parallel.DistributedDataParallel`, which keeps the replicas
equal; metrics are combined over the ranks, and only rank 0 prints and writes files.
"""
import numpy as np

from .. import distributed as dist
from ..data import DataLoader, DistributedSampler, Subset
from ..nn.parallel import DistributedDataParallel
from .evaluation import Evaluation, evaluate

__all__ = ["join_group", "wrap", "sharded_train_loader", "validation_shard",
           "evaluate_across_ranks", "combined_train_logs", "abort_with"]


def join_group(device):
    """This process's rank, joining the process group first if the caller has not (MPI on
    the CPU; NCCL on "cuda", which also picks this rank's GPU, so it comes before any
    array is put on one)."""
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "mpi")
    return dist.get_rank()


def wrap(model):
    """``(plain model, DDP wrapper)``: the plain one is what checkpoints hold, so that they
    load with or without distribution; a model already wrapped keeps its wrapper."""
    if isinstance(model, DistributedDataParallel):
        return model.module, model
    return model, DistributedDataParallel(model)


def sharded_train_loader(loader):
    """``loader`` reading this rank's shard: kept if it has a sampler already, otherwise
    the same loader over a :class:`DistributedSampler` with its shuffle and seed."""
    if getattr(loader, "sampler", None) is not None:
        return loader
    if not isinstance(loader, DataLoader):
        raise TypeError(f"fit(distributed=True) shards a minigrad DataLoader; got "
                        f"{type(loader).__name__}: give it a DistributedSampler yourself")
    sampler = DistributedSampler(loader.dataset, shuffle=loader.shuffle, seed=loader.seed)
    return _like(loader, loader.dataset, sampler=sampler, shuffle=False)


def validation_shard(loader):
    """``loader`` over this rank's validation samples: every world-size-th one from the
    rank's, no padding, so that the sums over ranks count every sample exactly once."""
    if getattr(loader, "sampler", None) is not None:
        return loader  # the caller's own sharding
    if not isinstance(loader, DataLoader):
        raise TypeError(f"evaluate(distributed=True) shards a minigrad DataLoader; got "
                        f"{type(loader).__name__}")
    rank, world = dist.get_rank(), dist.get_world_size()
    if len(loader.dataset) < world:
        raise ValueError(f"evaluate(distributed=True): {len(loader.dataset)} validation "
                         f"samples cannot give each of {world} ranks one")
    indices = np.arange(rank, len(loader.dataset), world)
    return _like(loader, Subset(loader.dataset, indices), shuffle=False)


def _like(loader, dataset, **changes):
    settings = dict(batch_size=loader.batch_size, shuffle=loader.shuffle, seed=loader.seed,
                    drop_last=loader.drop_last, device=loader.device, prefetch=loader.prefetch)
    settings.update(changes)
    return DataLoader(dataset, **settings)


def evaluate_across_ranks(model, loader, **kwargs):
    """``evaluate(..., distributed=True)``: this rank's shard evaluated (through a DDP
    model's ``module``: no collective per batch), then combined with every other's."""
    shard = validation_shard(loader)
    count = len(shard.sampler) if shard.sampler is not None else len(shard.dataset)
    result = evaluate(getattr(model, "module", model), shard, **kwargs)
    return _combined(result, count)


def _combined(result, count):
    """Every rank's :class:`Evaluation` together, from this rank's ``result`` over ``count``
    samples: sums of loss x count, of accuracy x count and of the confusion matrices."""
    totals = np.array([result.loss * count, (result.accuracy or 0.0) * count, count],
                      dtype=np.float64)
    dist.all_reduce(totals)
    loss, accuracy = totals[0] / totals[2], None
    confusion = result.confusion
    if result.accuracy is not None:
        accuracy = totals[1] / totals[2]
        k = np.array([confusion.shape[0]], dtype=np.int64)  # a rank may have seen a larger label
        dist.all_reduce(k, op=dist.ReduceOp.MAX)
        confusion = np.pad(confusion, (0, int(k[0]) - confusion.shape[0])).astype(np.int64)
        dist.all_reduce(confusion)
    return Evaluation(float(loss), None if accuracy is None else float(accuracy), confusion)


def combined_train_logs(logs):
    """An epoch's training logs over every rank: the loss and accuracy averaged (every rank
    saw as many samples), images per second summed."""
    keys = [k for k in ("loss", "accuracy") if logs.get(k) is not None]
    values = np.array([float(logs[k]) for k in keys], dtype=np.float64)
    if keys:
        dist.all_reduce(values, op=dist.ReduceOp.AVG)
    images = np.array([float(logs["images_per_second"])])
    dist.all_reduce(images)
    return dict(logs, images_per_second=float(images[0]), **dict(zip(keys, values.tolist())))


def abort_with(error):
    """With more than one rank, print ``error`` and end every rank (the others would wait
    for this one in their next collective); with one, return, so that it propagates."""
    if dist.get_world_size() > 1:
        dist.abort(1, error=error)
