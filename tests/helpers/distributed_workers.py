"""Programs that tests/distributed/test_distributed.py starts under ``mpiexec -n 2``.

``python tests/helpers/distributed_workers.py NAME OUTDIR``: every rank runs ``NAME`` and rank 0
writes what the test checks to ``OUTDIR/NAME.json``. The references (one process on
the concatenated batches) are computed on rank 0 in the same program.
"""
import json
import os
import sys

import numpy as np

import minigrad as mg
from minigrad import data, nn, optim
import minigrad.distributed as dist
import minigrad.functional as F

PER_RANK = 4  # samples per rank per step


def _dataset(n=22, size=8, seed=0):
    """A small image set (22 samples: uneven across 2 ranks, so padding happens)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, size, size)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return data.TensorDataset(x, y)


def _model(batch_norm):
    mg.manual_seed(7)
    layers = [nn.Conv2d(3, 4, 3, padding=1)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dense(4 * 4 * 4, 3)]
    return nn.Sequential(*layers)


def _loaders(dataset, world):
    """One loader per rank, each with its DistributedSampler (rank 0 builds every rank's,
    to know the batches the other ranks see)."""
    return [data.DataLoader(dataset, batch_size=PER_RANK, prefetch=0,
                            sampler=data.DistributedSampler(dataset, world, r, seed=3))
            for r in range(world)]


def _train(model, batches, accumulate_last):
    """SGD with momentum over ``batches`` (lists of (x, y)); the last two are one step
    with accumulated gradients, the first of them under ``no_sync`` when wrapped."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    steps = batches[:-2] if accumulate_last else batches
    for x, y in steps:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    if accumulate_last:
        opt.zero_grad()
        (x1, y1), (x2, y2) = batches[-2:]
        sync_off = model.no_sync() if isinstance(model, nn.parallel.DistributedDataParallel) \
            else _nothing()
        with sync_off:
            F.cross_entropy(model(x1), y1).backward()
        F.cross_entropy(model(x2), y2).backward()
        opt.step()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _concatenated(per_rank_batches):
    """Step k of one process: every rank's batch k, rank after rank."""
    return [(mg.tensor(np.concatenate([b[k][0].numpy() for b in per_rank_batches])),
             mg.tensor(np.concatenate([b[k][1].numpy() for b in per_rank_batches])))
            for k in range(len(per_rank_batches[0]))]


def _max_difference(a, b):
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


def _ddp_equals_one_process(batch_norm, out):
    rank, world = dist.get_rank(), dist.get_world_size()
    dataset = _dataset()
    loaders = _loaders(dataset, world)
    local = _model(batch_norm)
    if rank != 0:  # a different start, which the wrap must overwrite with rank 0's
        for p in local.parameters():
            p.data[...] = 5.0
    if batch_norm:
        local = nn.SyncBatchNorm.convert_sync_batchnorm(local)
    ddp = nn.parallel.DistributedDataParallel(local, bucket_cap_mb=0.0005)  # 524 bytes
    for epoch in range(2):  # two epochs: set_epoch reshuffles
        loaders[rank].set_epoch(epoch)
        batches = list(loaders[rank])
        _train(ddp, batches, accumulate_last=epoch == 1)
    weights = local.state_dict()
    gathered = dist_gather_max(weights)
    if rank == 0:
        reference = _model(batch_norm)
        for epoch in range(2):
            for loader in loaders:
                loader.set_epoch(epoch)
            _train(reference, _concatenated([list(loader) for loader in loaders]),
                   accumulate_last=epoch == 1)
        _write(out, {"max_difference": _max_difference(weights, reference.state_dict()),
                     "ranks_differ_by": gathered, "buckets": ddp.bucket_sizes,
                     "steps_per_epoch": len(loaders[0]),
                     "keys": list(ddp.state_dict())[:2]})


def dist_gather_max(state):
    """The largest difference between this rank's arrays and rank 0's."""
    worst = np.zeros(1)
    for value in state.values():
        mine = value.astype(np.float64)
        first = mine.copy()
        dist.broadcast(first, src=0)
        worst = np.maximum(worst, np.abs(mine - first).max())
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst[0])


def ddp(out):
    _ddp_equals_one_process(False, out)


def sync_batchnorm(out):
    _ddp_equals_one_process(True, out)


def collectives(out):
    """all_reduce by each op, broadcast, barrier; the differentiable all_reduce's gradient
    against central differences of the global (summed over ranks) scalar, in float64."""
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    for op in ("SUM", "AVG", "MAX", "MIN", "PRODUCT"):
        value = mg.tensor([rank + 1.0, -rank - 2.0])
        dist.all_reduce(value, op=getattr(dist.ReduceOp, op))
        results[op] = value.tolist()
    strided = np.arange(6.0).reshape(2, 3)[:, ::2] * (rank + 1)  # not contiguous
    dist.broadcast(strided, src=1)
    results["broadcast_from_1"] = strided.tolist()
    dist.barrier()

    rng = np.random.default_rng(rank)
    x = rng.standard_normal(3)
    weights = rng.standard_normal(3)

    def local_scalar(t):
        return (dist.functional.all_reduce(t * t) * t * mg.tensor(weights)).sum()

    xt = mg.tensor(x, requires_grad=True)
    local_scalar(xt).backward()
    numeric = np.zeros(3)
    eps = 1e-6
    for owner in range(world):  # every rank steps through the same perturbations
        for j in range(3):
            values = []
            for sign in (1, -1):
                shifted = x.copy()
                if rank == owner:
                    shifted[j] += sign * eps
                with mg.no_grad():
                    total = np.array([local_scalar(mg.tensor(shifted)).item()])
                dist.all_reduce(total)
                values.append(total[0])
            if rank == owner:
                numeric[j] = (values[0] - values[1]) / (2 * eps)
    error = np.array([np.abs(numeric - xt.grad).max()])
    dist.all_reduce(error, op=dist.ReduceOp.MAX)
    results["gradient_error"] = float(error[0])
    results["world"] = world
    if rank == 0:
        _write(out, results)


def fit_rank0_files(out):
    """fit(distributed=True): a checkpoint path per rank (only rank 0's may appear), the
    validation metrics against one process evaluating the whole set."""
    from minigrad.train import ModelCheckpoint, evaluate, fit
    rank = dist.get_rank()
    train_set, val_set = _dataset(), _dataset(n=15, seed=1)  # 15: shards of 8 and 7
    model = _model(False)
    history = fit(model, data.DataLoader(train_set, batch_size=PER_RANK, shuffle=True, seed=3),
                  data.DataLoader(val_set, batch_size=4), optimizer="sgd", lr=0.1, epochs=2,
                  distributed=True, verbose=2,
                  callbacks=[ModelCheckpoint(os.path.join(out, f"rank{rank}.npz"))])
    if rank == 0:
        whole = evaluate(model, data.DataLoader(val_set, batch_size=4))
        _write(out, {"history": history.history, "val_loss": whole.loss,
                     "val_accuracy": whole.accuracy, "steps": history.params["steps"]})


def fails_on_rank_1(out):
    """Rank 1 raises; rank 0 waits in a collective that rank 1 never joins."""
    if dist.get_rank() == 1:
        raise ValueError("rank 1 found a bad batch")
    dist.barrier()
    _write(out, {"rank 0 passed the barrier": True})


def nccl_one_rank(out):
    """NCCL collectives and one DDP step on CuPy arrays (a one-GPU communicator)."""
    import cupy
    a = cupy.arange(4, dtype=cupy.float32)
    dist.all_reduce(a, op=dist.ReduceOp.AVG)
    b = cupy.ones(3, dtype=cupy.float64) * 2
    dist.broadcast(b, src=0)
    host = np.array([3.0])
    dist.all_reduce(host)
    model = _model(False).to("cuda")
    ddp_model = nn.parallel.DistributedDataParallel(model)
    x = mg.tensor(np.ones((2, 3, 8, 8), np.float32), device="cuda")
    F.cross_entropy(ddp_model(x), mg.tensor([0, 1], device="cuda")).backward()
    _write(out, {"avg": a.get().tolist(), "broadcast": b.get().tolist(),
                 "host": host.tolist(), "grads_on_gpu": all(
                     p.grad is not None and p.device == "cuda" for p in model.parameters())})


def _write(out, result):
    name = sys.argv[1]
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    dist.init_process_group("nccl" if sys.argv[1].startswith("nccl") else "mpi")
    globals()[sys.argv[1]](sys.argv[2])
    dist.destroy_process_group()
