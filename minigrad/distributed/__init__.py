"""Data-parallel training across processes and nodes, with PyTorch's names.

::

    import minigrad.distributed as dist
    dist.init_process_group("mpi")               # or "nccl", one process per GPU
    model = nn.parallel.DistributedDataParallel(model)
    sampler = data.DistributedSampler(train_set, seed=0)
    loader = data.DataLoader(train_set, batch_size=32, sampler=sampler)

Start it with ``mpiexec -n 2 python train.py`` (or ``srun``). The process group lives
in :mod:`.process_group`; ``DistributedDataParallel`` in :mod:`minigrad.nn.parallel`,
``SyncBatchNorm`` in :mod:`minigrad.nn`, ``DistributedSampler`` in :mod:`minigrad.data`.
"""
from . import functional
from .process_group import (ReduceOp, abort, all_reduce, barrier, broadcast,
                            destroy_process_group, get_backend, get_rank, get_world_size,
                            init_process_group, is_available, is_initialized)

__all__ = ["ReduceOp", "is_available", "is_initialized", "init_process_group",
           "destroy_process_group", "get_rank", "get_world_size", "get_backend",
           "all_reduce", "broadcast", "barrier", "abort", "functional"]
