"""DistributedSampler: each rank's share of a dataset (``torch.utils.data.DistributedSampler``)."""
import math

import numpy as np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` trains on.

    Every epoch the indices are (with ``shuffle``) permuted by ``(seed, epoch)`` (the
    same permutation on every rank), then dealt round-robin: rank r takes positions
    r, r + R, r + 2R, ... So the shards are disjoint, together cover the dataset, and
    every rank gets ``len(self)`` indices, hence the same number of steps. When the
    dataset does not divide evenly, ``drop_last`` drops the tail, otherwise the order is
    padded with its own first indices (as PyTorch does: a few samples count twice).
    ``num_replicas`` and ``rank`` default to the process group's. A ``DataLoader`` given
    this sampler sets its epoch itself (``DataLoader.set_epoch`` reaches it), so a
    resumed run shuffles as the original did; ``set_epoch`` works directly too.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if int(num_replicas) != num_replicas or num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, "
                             f"got {num_replicas!r}")
        if int(rank) != rank or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank!r}, rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch):
        """Shuffle for epoch ``epoch`` next (call it before each epoch, as in PyTorch)."""
        self.epoch = int(epoch)

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        n = len(self.dataset)
        if self.shuffle:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch]))
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        if self.total_size > n:  # pad with the order's own head, repeated if need be
            order = np.resize(order, self.total_size)
        order = order[:self.total_size]
        return order[self.rank::self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler({len(self.dataset)} samples, rank {self.rank} of "
                f"{self.num_replicas}, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last})")
