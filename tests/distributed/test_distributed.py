"""Data-parallel training: the sampler in-process; the process group, DDP and
SyncBatchNorm as 2 ranks under ``mpiexec`` (the programs are tests/helpers/distributed_workers.py).

The MPI tests skip where mpi4py or an ``mpiexec`` beside this Python is missing
(``pip install 'minigrad[distributed]'`` gives both).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import data, nn
from tests.helpers.repo import ROOT

# Slow (still run in CI): starts MPI jobs under mpiexec.
pytestmark = pytest.mark.slow

WORKERS = ROOT / "tests" / "helpers" / "distributed_workers.py"


def mpiexec():
    """The mpiexec installed beside this interpreter (the mpich wheel's), or a skip."""
    pytest.importorskip("mpi4py")
    path = Path(sys.executable).parent / "mpiexec"
    if not path.exists():
        pytest.skip(f"no mpiexec beside {sys.executable} (pip install mpich)")
    return str(path)


def run_ranks(argv, n=2, timeout=90, launcher=None):
    """``argv`` on ``n`` ranks, one thread each, this tree first on the path."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = ([launcher or mpiexec(), "-n", str(n)] if n else []) + [sys.executable] + argv
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def run_worker(name, tmp_path, n=2, **kwargs):
    result = run_ranks([str(WORKERS), name, str(tmp_path)], n=n, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((tmp_path / f"{name}.json").read_text())


# ------------------------------------------------------------------ sampler (no MPI)
@pytest.mark.parametrize("n, world, drop_last", [(10, 2, False), (11, 2, False), (11, 3, False),
                                                  (11, 3, True), (2, 3, False)])
def test_sampler_shards_are_disjoint_cover_and_equal_in_length(n, world, drop_last):
    dataset = data.TensorDataset(np.arange(n))
    shards = [list(data.DistributedSampler(dataset, world, r, seed=1, drop_last=drop_last))
              for r in range(world)]
    lengths = {len(s) for s in shards}
    assert len(lengths) == 1  # the same number of steps on every rank
    assert len(shards[0]) == len(data.DistributedSampler(dataset, world, 0,
                                                         drop_last=drop_last))
    every = [i for shard in shards for i in shard]
    if drop_last:
        assert len(every) == len(set(every)) == (n // world) * world
    else:
        # Padded with the order's own head, as PyTorch: every sample at least once, and
        # the extras are the first ones of the permutation.
        assert set(every) == set(range(n))
        assert len(every) == -(-n // world) * world
        if n % world == 0:
            assert len(set(every)) == len(every)  # no padding: disjoint


def test_sampler_reshuffles_per_epoch_the_same_way_on_every_rank():
    dataset = data.TensorDataset(np.arange(40))
    ranks = [data.DistributedSampler(dataset, 2, r, seed=5) for r in range(2)]
    first = [list(s) for s in ranks]
    for s in ranks:
        s.set_epoch(1)
    second = [list(s) for s in ranks]
    assert first != second
    for shards in (first, second):  # each epoch: one permutation, dealt out
        assert sorted(shards[0] + shards[1]) == list(range(40))
    unshuffled = data.DistributedSampler(dataset, 2, 1, shuffle=False)
    assert list(unshuffled) == list(range(1, 40, 2))


def test_sampler_rejects_bad_ranks_and_needs_a_group_for_defaults():
    dataset = data.TensorDataset(np.arange(4))
    with pytest.raises(ValueError, match="rank"):
        data.DistributedSampler(dataset, 2, 2)
    with pytest.raises(ValueError, match="num_replicas"):
        data.DistributedSampler(dataset, 0, 0)
    with pytest.raises(RuntimeError, match="init_process_group"):
        data.DistributedSampler(dataset)


def test_loader_takes_a_sampler_and_drives_its_epoch():
    x = np.arange(10, dtype=np.float32)[:, None]
    dataset = data.TensorDataset(x, np.arange(10))
    sampler = data.DistributedSampler(dataset, 2, 1, seed=2)
    loader = data.DataLoader(dataset, batch_size=2, sampler=sampler, prefetch=0)
    assert len(loader) == 3
    epoch0 = [int(i) for _, y in loader for i in y.numpy()]
    assert epoch0 == list(sampler)  # the loader took the sampler's order (epoch 0)
    epoch1 = [int(i) for _, y in loader for i in y.numpy()]
    assert sampler.epoch == 1 and epoch1 == list(sampler) and epoch1 != epoch0
    loader.set_epoch(0)  # a resumed run: back to epoch 0's order
    assert [int(i) for _, y in loader for i in y.numpy()] == epoch0
    with pytest.raises(ValueError, match="mutually exclusive"):
        data.DataLoader(dataset, sampler=sampler, shuffle=True)


def test_without_a_group_the_layers_and_calls_say_what_is_missing():
    assert not mg.distributed.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        mg.distributed.get_rank()
    with pytest.raises(RuntimeError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Dense(2, 2))
    # SyncBatchNorm without a group is a BatchNorm2d (same numbers).
    mg.manual_seed(0)
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32))
    plain = nn.Sequential(nn.BatchNorm2d(3))
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)))
    assert type(synced[0]) is nn.SyncBatchNorm
    np.testing.assert_allclose(synced(x).numpy(), plain(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(synced[0].running_var, plain[0].running_var, rtol=1e-6)


def test_convert_sync_batchnorm_shares_parameters_and_buffers():
    bn = nn.BatchNorm2d(3)
    bn.eval()
    model = nn.Sequential(nn.Conv2d(1, 3, 3), bn)
    nn.SyncBatchNorm.convert_sync_batchnorm(model)
    sync = model[1]
    assert isinstance(sync, nn.SyncBatchNorm) and not sync.training
    assert sync.weight is bn.weight and sync.running_mean is bn.running_mean
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                        "1.running_mean", "1.running_var",
                                        "1.num_batches_tracked"]


# ------------------------------------------------------------------ 2 ranks under mpiexec
def test_collectives_and_the_differentiable_all_reduce(tmp_path):
    out = run_worker("collectives", tmp_path)
    assert out["world"] == 2
    assert out["SUM"] == [3.0, -5.0] and out["AVG"] == [1.5, -2.5]
    assert out["MAX"] == [2.0, -2.0] and out["MIN"] == [1.0, -3.0]
    assert out["PRODUCT"] == [2.0, 6.0]
    assert out["broadcast_from_1"] == [[0.0, 4.0], [6.0, 10.0]]  # rank 1's strided values
    assert out["gradient_error"] < 1e-7  # float64, central differences over both ranks


def test_ddp_weights_equal_one_process_on_the_concatenated_batches(tmp_path):
    out = run_worker("ddp", tmp_path)
    # 2 epochs of SGD with momentum, the last step accumulated under no_sync; rank 1
    # started from other weights, which the wrap replaced with rank 0's.
    assert out["max_difference"] < 1e-5
    assert out["ranks_differ_by"] == 0.0
    assert len(out["buckets"]) > 1  # the tiny bucket cap split the gradients
    assert out["steps_per_epoch"] == 3  # 22 samples: 11 per rank (padded), batches of 4
    assert out["keys"] == ["module.0.weight", "module.0.bias"]  # PyTorch's prefix


def test_sync_batchnorm_trains_as_batchnorm_on_the_global_batch(tmp_path):
    out = run_worker("sync_batchnorm", tmp_path)
    assert out["max_difference"] < 1e-5  # weights and running statistics
    assert out["ranks_differ_by"] == 0.0


def test_a_failing_rank_stops_every_rank_with_its_error(tmp_path):
    result = run_ranks([str(WORKERS), "fails_on_rank_1", str(tmp_path)], timeout=60)
    assert result.returncode != 0
    assert "rank 1 found a bad batch" in result.stderr
    assert not (tmp_path / "fails_on_rank_1.json").exists()  # rank 0 never got past


@pytest.mark.gpu
def test_nccl_one_rank_collectives_and_ddp(tmp_path):
    cupy = pytest.importorskip("cupy")
    if not mg.cuda_available():
        pytest.skip("no CUDA GPU")
    pytest.importorskip("cupy.cuda.nccl")
    del cupy
    out = run_worker("nccl_one_rank", tmp_path, n=1)
    assert out["avg"] == [0.0, 1.0, 2.0, 3.0]  # one rank: the average is itself
    assert out["broadcast"] == [2.0, 2.0, 2.0] and out["host"] == [3.0]
    assert out["grads_on_gpu"]


def test_queue_callback_runs_once_backward_has_written_every_gradient():
    from minigrad.tensor import queue_callback
    from minigrad.functional import _record
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    seen = []

    def queued_by_the_output_op(g):
        queue_callback(lambda: seen.append(w.grad.copy()))
        return (g,)
    out = _record((w * 3).data, (w * 3,), queued_by_the_output_op)
    out.sum().backward()
    assert len(seen) == 1 and seen[0].tolist() == [3.0, 3.0]  # ran after w got its grad
    with pytest.raises(RuntimeError, match="during backward"):
        queue_callback(lambda: None)


def test_a_callback_is_queued_once_per_backward_and_dropped_when_backward_fails():
    from minigrad.functional import _record
    from minigrad.tensor import queue_callback
    calls = []

    def record():
        calls.append(1)

    def queues(g):
        queue_callback(record)
        queue_callback(record)
        return (g,)

    def fails(g):
        raise ZeroDivisionError("in backward")
    w = mg.tensor([1.0], requires_grad=True)
    (_record(w.data * 2, (w,), queues) * 3).sum().backward()
    assert calls == [1]
    broken = _record(w.data, (_record(w.data, (w,), fails),), queues)
    with pytest.raises(ZeroDivisionError):
        broken.sum().backward()
    assert calls == [1]  # queued, then dropped with the failed pass
    (_record(w.data * 2, (w,), queues)).sum().backward()
    assert calls == [1, 1]


def test_fit_distributed_writes_on_rank_0_and_reports_whole_set_metrics(tmp_path):
    out = run_worker("fit_rank0_files", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit_rank0_files.json", "rank0.npz"]
    history = out["history"]
    assert len(history["val_loss"]) == 2 and out["steps"] == 3  # 11 samples a rank, batches of 4
    # The two ranks' disjoint validation shards (8 and 7 samples), combined, are the set.
    assert history["val_loss"][-1] == pytest.approx(out["val_loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == pytest.approx(out["val_accuracy"])


@pytest.mark.slow
def test_demo_distributed_prints_once_writes_once_and_resumes(tmp_path):
    demo = [str(ROOT / "demos" / "bees_vs_wasps.py"), "--distributed", "--size", "16",
            "--synthetic-images", "120", "--batch-size", "16", "--out", str(tmp_path / "run"),
            "--quiet"]
    first = run_ranks(demo + ["--epochs", "1"], timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("val_loss") == 1  # rank 0 alone prints
    written = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"history.json", "result.json", "model.npz", "checkpoint.npz"} <= written
    assert not [name for name in written if name.endswith(".tmp")]
    resumed = run_ranks(demo + ["--epochs", "2", "--resume"], timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["resumed"] and len(result["history"]["val_loss"]) == 2
    assert sum(map(sum, result["confusion"])) == result["val_images"] == 24
