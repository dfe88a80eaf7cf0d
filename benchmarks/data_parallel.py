"""Data-parallel training of the exercise CNN: 1 against 2 MPI processes, and on paper
the ring all-reduce's cost per step for N nodes against the step's compute.

    python benchmarks/data_parallel.py [--batch-size 32] [--steps 8] [--rounds 2] [--json PATH]

Each run is ``mpiexec -n P python benchmarks/data_parallel.py --worker``, every process
with one thread (OMP, OpenBLAS, Numba), its own batch of ``--batch-size`` images
(weak scaling: the global batch grows with P) and the model wrapped in
DistributedDataParallel over MPI. Per P it reports, as medians over the steps and
the slowest rank: ``step_ms`` (zero_grad, forward, loss, backward with the gradient
all-reduce, Adam), ``compute_ms`` (the same step under ``no_sync``: no collective),
``allreduce_ms`` (the bucketed all-reduce of the 6.9 MB of gradients alone) and
``images_per_second`` (P x batch / step). Rounds alternate P=1 and P=2 so that a
busy machine slows both alike.

``ring_model`` is arithmetic, not a measurement: a ring all-reduce moves
2 (N-1)/N x S bytes in and out of every node and takes 2 (N-1) latency-bound
steps, so t(N) = 2 (N-1)/N x S / bandwidth + 2 (N-1) x latency, with S the
gradients' bytes. Against a step's compute c (no overlap: minigrad reduces after
backward), the efficiency is c / (c + t(N)). Compute figures: this run's one-thread
CPU step, and the GPU steps recorded in benchmarks/README.md (NVIDIA H200, batch 32
and 256, eager), quoted, not measured here.

(Named data_parallel, not distributed: tests put benchmarks/ on sys.path, where a module
named "distributed" would hide Dask's.)
"""
import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402  (after the path set-up)
from _common import CLASSES, IMAGE_SIZE, cpu_model, make_batch, median_ms, time_each  # noqa: E402

# Link speeds (bytes/s, sustained) and per-message latencies (s): typical published
# figures, to show the shape of the curve rather than any one cluster's numbers.
NETWORKS = {  # name: (bytes/s, latency in s, node counts it serves)
    "10GbE (TCP)": (1.25e9, 25e-6, (2, 4, 8, 16, 64)),
    "100Gb/s InfiniBand": (12.0e9, 2e-6, (2, 4, 8, 16, 64)),
    "PCIe 4.0 x16 (GPUs in one box, no NVLink)": (24e9, 5e-6, (2, 4, 8)),
    "NVLink 4 (H100/H200 SXM, NCCL bus bandwidth)": (350e9, 5e-6, (2, 4, 8)),
}
# benchmarks/README.md, "Last measured on an NVIDIA H200": eager ms per step.
GPU_STEP_MS = {"H200 eager, batch 32": 2.07, "H200 eager, batch 256": 9.58}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


def worker(batch_size, steps, warmup):
    """One rank: time the DDP step, the step without communication, and the reduction."""
    import minigrad.distributed as dist
    import minigrad.functional as F
    from minigrad import models, nn, optim, tensor
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = nn.parallel.DistributedDataParallel(models.exercise_cnn(CLASSES, "relu", IMAGE_SIZE))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    images, labels = make_batch(batch_size, seed=rank)
    x, y = tensor(images), tensor(labels)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def compute_only():
        with model.no_sync():
            step()

    def slowest(ms):  # a step is as slow as its slowest rank
        value = np.array([ms])
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return float(value[0])

    for _ in range(warmup):
        step()
    dist.barrier()
    step_ms = median_ms(time_each(step, dist.barrier, steps))
    compute_ms = median_ms(time_each(compute_only, dist.barrier, steps))
    reduce_ms = median_ms(time_each(model._reduce_gradients, dist.barrier, steps))
    result = {"processes": world, "batch_per_process": batch_size,
              "parameters": model.module.num_parameters(),
              "buckets": model.bucket_sizes,
              "step_ms": slowest(step_ms), "compute_ms": slowest(compute_ms),
              "allreduce_ms": slowest(reduce_ms)}
    result["images_per_second"] = round(world * batch_size / (result["step_ms"] / 1e3), 1)
    if rank == 0:
        print(json.dumps(result))
    dist.destroy_process_group()


def run(processes, args):
    mpiexec = Path(sys.executable).parent / "mpiexec"
    command = [str(mpiexec), "-n", str(processes), sys.executable, __file__, "--worker",
               "--batch-size", str(args.batch_size), "--steps", str(args.steps),
               "--warmup", str(args.warmup)]
    out = subprocess.run(command, env=dict(os.environ, **ONE_THREAD), capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def ring_model(gradient_bytes, compute_ms):
    """t(N) of a ring all-reduce of ``gradient_bytes`` per network (N: nodes, or GPUs in
    one box for the in-box links), and the efficiency against each compute figure."""
    table = {}
    for network, (bandwidth, latency, nodes) in NETWORKS.items():
        rows = {}
        for n in nodes:
            seconds = 2 * (n - 1) / n * gradient_bytes / bandwidth + 2 * (n - 1) * latency
            ms = 1e3 * seconds
            rows[n] = {"allreduce_ms": round(ms, 3),
                       "efficiency": {name: round(c / (c + ms), 3)
                                      for name, c in compute_ms.items()}}
        table[network] = rows
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.batch_size, args.steps, args.warmup)
    runs = {1: [], 2: []}
    for _ in range(args.rounds):
        for processes in runs:
            runs[processes].append(run(processes, args))
    measured = {}
    for processes, results in runs.items():
        best = min(results, key=lambda r: r["step_ms"])  # the least disturbed round
        best["step_ms_per_round"] = [r["step_ms"] for r in results]
        measured[f"{processes}_process"] = best
    one, two = measured["1_process"], measured["2_process"]
    parameters = one["parameters"]
    compute = {"this CPU, 1 thread, batch %d" % args.batch_size: one["compute_ms"], **GPU_STEP_MS}
    result = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "measured": measured,
        "speedup_2_over_1": round(two["images_per_second"] / one["images_per_second"], 2),
        "gradient_bytes": 4 * parameters,
        "ring_model": ring_model(4 * parameters, compute),
        "compute_ms_used": compute,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
