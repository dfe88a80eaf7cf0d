"""Time the exercise CNN's training step (and its pieces) in minigrad, and in PyTorch.

    python benchmarks/train_step.py [--device cpu|cuda] [--batch-size 32] [--steps 20]
                                    [--kernels fast|reference|both] [--json PATH]

Model (context/bees_vs_wasps_exercise.md): Conv2d(3,32,3,p1)-ReLU-MaxPool2 -
Conv2d(32,64,3,p1)-ReLU-MaxPool2 - Conv2d(64,128,3,p1)-ReLU-MaxPool2 - Flatten -
Dense(12800,128) - ReLU - Dense(128,4), 80x80 inputs, cross-entropy, Adam. Built,
trained and timed through minigrad's public API only.

Prints one JSON object: milliseconds per training step (forward, loss, backward, Adam
step; median after warm-up), forward-only inference, per-layer forward/backward
breakdown, the first step of a fresh process with an empty Numba cache (cold) and
with the cache it left (warm), peak resident memory, and, where PyTorch imports, the
same model (same weights) in PyTorch with the same thread count, timed in a worker
process in rounds interleaved with minigrad's so that machine load hits both alike,
and the ratios (minigrad / PyTorch: below 1 is faster). ``--kernels both`` adds the
plain NumPy reference kernels and the speed-up of the fast ones.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # _common, also when this file is loaded by its path
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402  (after the path set-up)
from _common import (CLASSES, IMAGE_SIZE, cpu_model, cupy_peak_allocated_bytes,  # noqa: E402
                     emit_json,
                     make_batch, median_ms, time_each, time_forward_backward,
                     time_inference, torch_exercise_cnn, weight_grad_report)

# --sweep: image sizes and batch sizes (the grid), and the work a cell's
# timed steps should add up to, in exercise steps (batch 32, 80x80): big cells get
# fewer steps so that the sweep takes a few minutes.
SWEEP_SIZES = (32, 80, 160)
SWEEP_BATCHES = (1, 32, 256)
SWEEP_WORK = 12

# Training steps watched for peak GPU memory (after the timed ones: the watching is slow).
GPU_MEMORY_STEPS = 3

# The layers of minigrad.models.exercise_cnn(CLASSES, "relu", IMAGE_SIZE), in order.
LAYER_NAMES = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "conv3", "relu3",
               "pool3", "flatten", "dense1", "relu4", "dense2"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="image side (80)")
    parser.add_argument("--sweep", action="store_true",
                        help="instead of the detailed report: training step and inference "
                             "for every --sweep-sizes x --sweep-batches cell, beside PyTorch")
    parser.add_argument("--sweep-sizes", type=int, nargs="+", default=list(SWEEP_SIZES))
    parser.add_argument("--sweep-batches", type=int, nargs="+", default=list(SWEEP_BATCHES))
    parser.add_argument("--steps", type=int, default=20,
                        help="timed steps per measurement (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3,
                        help="minigrad/PyTorch rounds, interleaved")
    parser.add_argument("--kernels", default="fast", choices=["fast", "reference", "both"])
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--no-first-step", action="store_true",
                        help="skip the cold/warm first-step subprocesses")
    parser.add_argument("--tf32", action="store_true",
                        help="with --device cuda: TF32 matrix products in both frameworks "
                             "(mg.cuda.allow_tf32; torch allow_tf32); float32 otherwise")
    parser.add_argument("--worker", choices=["torch", "first-step"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.steps < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--batch-size, --steps and --rounds must be positive, --warmup >= 0")
    if min([args.size] + args.sweep_sizes) < 8 or min(args.sweep_batches) < 1:
        parser.error("image sizes must be at least 8 (three 2x2 poolings), batches >= 1")
    if args.tf32 and args.device != "cuda":
        parser.error("--tf32 needs --device cuda")
    return args


def blas_threads():
    """OpenBLAS's thread count as it stands (minigrad holds it to one while its own
    threads share out the work), or None where no OpenBLAS was found."""
    from kernels.cpu import _threads
    return None if _threads._BLAS is None else _threads._BLAS[0]()


def cpu_threads():
    """How many cores minigrad's CPU step may keep busy: its kernels' threads, or
    Numba's when its kernels run parallel (MINIGRAD_CPU_PARALLEL=1) with more."""
    import numba
    import minigrad as mg
    from kernels.cpu import PARALLEL
    numba_threads = int(numba.config.NUMBA_NUM_THREADS) if PARALLEL else 1
    return max(mg.get_num_threads(), numba_threads)


def peak_rss_mib():
    """Peak resident memory of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def current_rss_mib():
    """Resident memory now (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20), 1)


# ----------------------------------------------------------------------- minigrad
class MinigradRunner:
    """The exercise CNN in minigrad, with timed step / forward / per-layer passes."""

    def __init__(self, device, batch_size, tf32=False, size=IMAGE_SIZE):
        import minigrad as mg
        from minigrad.models import exercise_cnn
        self.mg, self.device = mg, device
        if tf32:
            mg.cuda.allow_tf32(True)
        mg.manual_seed(0)
        self.model = exercise_cnn(CLASSES, "relu", size)
        self.model.to(device)
        self.loss_fn = mg.losses.get("cross_entropy")
        self.optimizer = mg.optim.get("adam", self.model.parameters(), lr=1e-3)
        images, labels = make_batch(batch_size, size=size)
        self.x = mg.tensor(images, device=device)
        self.labels = mg.tensor(labels, device=device)

    def state_dict(self):
        return self.model.state_dict()

    def sync(self):
        if self.device == "cuda":
            import cupy
            cupy.cuda.Device().synchronize()

    def step(self):
        """One training step; returns the loss tensor (not read, to avoid a host sync)."""
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(self.x), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss

    def time_steps(self, steps):
        self.model.train()
        return time_each(self.step, self.sync, steps)

    def gpu_memory(self, steps):
        """Peak GPU memory over ``steps`` training steps (model, optimizer state and
        batch included), as PyTorch's max_memory_allocated / max_memory_reserved."""
        import cupy
        self.model.train()
        peak, reserved = cupy_peak_allocated_bytes(
            cupy, lambda: [self.step() for _ in range(steps)])
        return {"peak_allocated_mib": round(peak / 2 ** 20, 1),
                "reserved_mib": round(reserved / 2 ** 20, 1)}

    def time_forward(self, steps):
        return time_inference(self.model, self.mg.no_grad, self.x, self.sync, steps)

    def layer_breakdown(self, steps, warmup):
        """Median forward and backward ms of each layer, fed the activations it sees.

        Each layer runs alone on a detached copy of its real input (the first
        layer's input needs no gradient, as in training); its backward gets a
        gradient of the output's shape. Then the loss and the optimizer step.
        """
        mg = self.mg
        rows = {}
        with mg.no_grad():  # inputs[i] is layer i's input; inputs[-1] the logits
            inputs = [self.x]
            for layer in self.model:
                inputs.append(layer(inputs[-1]))
        rng = np.random.default_rng(1)
        layers = list(self.model)

        def time_layer(run, layer, i):
            x = mg.tensor(inputs[i].numpy(), requires_grad=i > 0, device=self.device)
            # The output's shape is the next layer's input's (a fused conv + ReLU too).
            grad = mg.tensor(rng.standard_normal(inputs[i + 1].shape).astype(np.float32),
                             device=self.device)

            def reset():
                x.grad = None
                for param in layer.parameters():
                    param.grad = None
            return time_forward_backward(lambda: run(x), lambda y: y.backward(grad),
                                         reset, self.sync, steps, warmup)

        for i, (name, layer) in enumerate(zip(LAYER_NAMES, layers)):
            rows[name] = time_layer(layer, layer, i)
        # What the model really runs: Sequential fuses each Conv2d + ReLU into one kernel
        # (reported beside the separate rows, not added to layers_total_ms).
        fused = {}
        for i, (name, layer) in enumerate(zip(LAYER_NAMES, layers)):
            if name.startswith("conv") and isinstance(layers[i + 1], mg.nn.ReLU):
                fused[f"{name}+{LAYER_NAMES[i + 1]}"] = time_layer(
                    lambda x, layer=layer: layer.convolve(x, "relu"), layer, i)
        logits = mg.tensor(inputs[-1].numpy(), requires_grad=True, device=self.device)

        def reset_logits():
            logits.grad = None
        rows["cross_entropy"] = time_forward_backward(
            lambda: self.loss_fn(logits, self.labels), lambda loss: loss.backward(),
            reset_logits, self.sync, steps, warmup)
        self.step()  # leaves a real gradient on every parameter
        adam_ms = median_ms(time_each(self.optimizer.step, self.sync, warmup + steps)[warmup:])
        total = adam_ms + sum(r["forward_ms"] + r["backward_ms"] for r in rows.values())
        rows["fused"] = fused
        return rows, adam_ms, round(total, 3)


# ------------------------------------------------------------------------ PyTorch
class TorchRunner:
    """The same model in PyTorch (weights copied from minigrad's state_dict)."""

    def __init__(self, device, batch_size, threads, weights, tf32=False, size=IMAGE_SIZE):
        import torch
        self.torch, self.device = torch, device
        if device == "cpu":
            torch.set_num_threads(threads)
        else:  # float32 against float32, or TF32 against TF32 (--tf32)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        self.model = torch_exercise_cnn(torch.nn, size)
        if weights is not None:
            self.model.load_state_dict({k: torch.from_numpy(np.asarray(v))
                                        for k, v in weights.items()})
        self.model.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        images, labels = make_batch(batch_size, size=size)
        self.x = torch.from_numpy(images).to(device)
        self.labels = torch.from_numpy(labels).to(device)

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def first_loss(self):
        with self.torch.no_grad():
            return float(self.torch.nn.functional.cross_entropy(self.model(self.x),
                                                                self.labels))

    def step(self):
        self.optimizer.zero_grad()
        self.torch.nn.functional.cross_entropy(self.model(self.x), self.labels).backward()
        self.optimizer.step()

    def time_steps(self, steps):
        return time_each(self.step, self.sync, steps)

    def gpu_memory(self, steps):
        """Peak GPU memory over ``steps`` training steps, as minigrad's is measured."""
        cuda = self.torch.cuda
        cuda.synchronize()
        cuda.reset_peak_memory_stats()
        for _ in range(steps):
            self.step()
        cuda.synchronize()
        return {"peak_allocated_mib": round(cuda.max_memory_allocated() / 2 ** 20, 1),
                "reserved_mib": round(cuda.max_memory_reserved() / 2 ** 20, 1)}

    def layer_breakdown(self, steps, warmup):
        """Per-layer forward/backward medians, measured as minigrad's are."""
        torch = self.torch
        with torch.no_grad():
            inputs = [self.x]
            for layer in self.model:
                inputs.append(layer(inputs[-1]))
        rows = {}
        for i, (name, layer) in enumerate(zip(LAYER_NAMES, self.model)):
            x = inputs[i].detach().clone().requires_grad_(i > 0)
            grad = torch.randn_like(inputs[i + 1])

            def reset(layer=layer, x=x):
                layer.zero_grad(set_to_none=True)
                x.grad = None
            rows[name] = time_forward_backward(
                lambda layer=layer, x=x: layer(x), lambda y, grad=grad: y.backward(grad),
                reset, self.sync, steps, warmup)
        return rows

    def time_forward(self, steps):
        return time_inference(self.model, self.torch.no_grad, self.x, self.sync, steps)


def torch_worker():
    """Serve PyTorch timings over stdin/stdout, one JSON request per line."""
    runner = None
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "init":
            weights = dict(np.load(request["weights"])) if request.get("weights") else None
            runner = TorchRunner(request["device"], request["batch_size"],
                                 request["threads"], weights, request.get("tf32", False),
                                 request.get("size", IMAGE_SIZE))
            import torch
            reply = {"version": torch.__version__, "threads": torch.get_num_threads(),
                     "first_loss": runner.first_loss()}
        elif request["op"] == "steps":
            reply = {"times": runner.time_steps(request["count"])}
        elif request["op"] == "forward":
            reply = {"times": runner.time_forward(request["count"])}
        elif request["op"] == "layers":
            reply = {"layers": runner.layer_breakdown(request["steps"], request["warmup"])}
        elif request["op"] == "rss":
            reply = {"peak_rss_mib": peak_rss_mib()}
        elif request["op"] == "gpu_memory":
            reply = {"gpu_memory": runner.gpu_memory(request["steps"])}
        else:
            reply = {"error": f"unknown op {request['op']!r}"}
        print(json.dumps(reply), flush=True)


class TorchClient:
    """A PyTorch worker process: its own thread pools and memory, out of our way."""

    def __init__(self, args, threads, weights_path):
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "torch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.args, self.threads = args, threads
        self.setup(args.batch_size, args.size, weights_path)

    def setup(self, batch_size, size, weights_path):
        """(Re)build the worker's model and batch: same weights, this batch and size."""
        self.info = self.ask(op="init", device=self.args.device, batch_size=batch_size,
                             threads=self.threads, weights=str(weights_path),
                             tf32=self.args.tf32, size=size)

    def ask(self, **request):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the PyTorch worker process ended unexpectedly")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"PyTorch worker: {reply['error']}")
        return reply

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def torch_importable():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


# --------------------------------------------------------------- first step
def first_step_worker(args):
    """In a fresh process: seconds from start to the end of the first training step."""
    start = time.perf_counter()
    runner = MinigradRunner(args.device, args.batch_size, size=args.size)
    built = time.perf_counter()
    runner.step()
    runner.sync()
    done = time.perf_counter()
    print(json.dumps({"import_and_build_s": round(built - start, 3),
                      "first_step_s": round(done - built, 3),
                      "total_s": round(done - start, 3)}))


def first_step_times(args):
    """Cold (empty Numba cache) and warm (the cache the cold run left) first steps."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="minigrad-numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        if args.device == "cuda":
            env["CUPY_CACHE_DIR"] = cache_dir
        for name in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--worker", "first-step",
                 "--device", args.device, "--batch-size", str(args.batch_size),
                 "--size", str(args.size)],
                env=env, capture_output=True, text=True, check=True)
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


# ---------------------------------------------------------------------- driver
def interleaved(runner, client, args, op, steps=None, warmup=None):
    """Alternate rounds of minigrad and PyTorch; each round starts with a warm-up."""
    steps = args.steps if steps is None else steps
    warmup = args.warmup if warmup is None else warmup
    ours, theirs = [], []
    timer = runner.time_steps if op == "steps" else runner.time_forward
    for _ in range(args.rounds):
        ours += timer(warmup + steps)[warmup:]
        if client is not None:
            times = client.ask(op=op, count=warmup + steps)["times"]
            theirs += times[warmup:]
    return ours, theirs


def describe_environment(args, threads):
    import numba
    import minigrad as mg
    env = {k: os.environ[k] for k in sorted(os.environ)
           if k.startswith(("OPENBLAS", "NUMBA", "OMP", "MKL", "MINIGRAD"))}
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "machine": platform.machine(),
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "threads": threads,
            "blas_threads": blas_threads(),
            "numba_threads": int(numba.config.NUMBA_NUM_THREADS), "environment": env,
            "minigrad": getattr(mg, "__version__", "?")}
    if args.device == "cpu":
        import kernels.cpu
        info["cpu_kernels_parallel"] = kernels.cpu.PARALLEL
    return info


def run(args):
    threads = cpu_threads()
    result = {"benchmark": "exercise CNN training step", "device": args.device,
              "tf32": args.tf32, "batch_size": args.batch_size, "image_size": args.size,
              "steps": args.steps, "rounds": args.rounds, "warmup": args.warmup}
    modes = ["fast", "reference"] if args.kernels == "both" else [args.kernels]
    os.environ["MINIGRAD_KERNELS"] = modes[0]
    runner = MinigradRunner(args.device, args.batch_size, args.tf32, args.size)
    runner.time_steps(max(args.warmup, 1))  # compile / load every kernel once
    result["environment"] = describe_environment(args, threads)

    client = None
    if not args.no_torch and torch_importable():
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "weights.npz"
            np.savez(weights, **{k: np.asarray(v) for k, v in runner.state_dict().items()})
            client = TorchClient(args, threads, weights)
        with runner.mg.no_grad():
            ours_loss = float(runner.loss_fn(runner.model(runner.x), runner.labels).item())
        result["torch"] = {"version": client.info["version"],
                           "threads": client.info["threads"]}
    try:
        rss_before = current_rss_mib()
        steps, torch_steps = interleaved(runner, client, args, "steps")
        rss_after = current_rss_mib()
        forward, torch_forward = interleaved(runner, client, args, "forward")
        mode_results = {}
        mode_results[modes[0]] = {
            "train_step_ms": median_ms(steps), "train_step_min_ms": round(1e3 * min(steps), 3),
            "images_per_s": round(args.batch_size / statistics.median(steps), 1),
            "forward_ms": median_ms(forward),
            # The high-water mark of the whole process so far (model, warm-up, steps).
            "peak_rss_mib": peak_rss_mib(),
            "rss_change_over_timed_steps_mib": (None if rss_before is None else
                                                round(rss_after - rss_before, 1))}
        layers, adam_ms, layer_total = runner.layer_breakdown(args.steps, args.warmup)
        mode_results[modes[0]]["fused_layers"] = layers.pop("fused")
        mode_results[modes[0]]["layers"] = layers
        mode_results[modes[0]]["adam_step_ms"] = adam_ms
        mode_results[modes[0]]["layers_total_ms"] = layer_total
        if args.device == "cuda":
            mode_results[modes[0]]["gpu_memory"] = runner.gpu_memory(GPU_MEMORY_STEPS)
        if client is not None:
            result["torch"]["layers"] = client.ask(op="layers", steps=args.steps,
                                                   warmup=args.warmup)["layers"]
            result["torch"].update({
                "train_step_ms": median_ms(torch_steps),
                "train_step_min_ms": round(1e3 * min(torch_steps), 3),
                "forward_ms": median_ms(torch_forward),
                "peak_rss_mib": client.ask(op="rss")["peak_rss_mib"]})
            if args.device == "cuda":
                result["torch"]["gpu_memory"] = client.ask(
                    op="gpu_memory", steps=GPU_MEMORY_STEPS)["gpu_memory"]
            result["torch"]["ratio_train_step"] = round(
                statistics.median(steps) / statistics.median(torch_steps), 3)
            result["torch"]["ratio_forward"] = round(
                statistics.median(forward) / statistics.median(torch_forward), 3)
            # Fastest against fastest: load from other processes only ever adds time.
            result["torch"]["ratio_train_step_min"] = round(min(steps) / min(torch_steps), 3)
            result["torch"]["first_loss"] = client.info["first_loss"]
            result["torch"]["minigrad_first_loss"] = ours_loss
    finally:
        if client is not None:
            client.close()

    if len(modes) == 2:  # the reference path: slow, so fewer steps, no rounds
        os.environ["MINIGRAD_KERNELS"] = "reference"
        few = max(3, min(args.steps, 5))
        runner.time_steps(1)
        ref_steps = runner.time_steps(few)
        ref_forward = runner.time_forward(few)
        mode_results["reference"] = {"train_step_ms": median_ms(ref_steps),
                                     "forward_ms": median_ms(ref_forward)}
        os.environ["MINIGRAD_KERNELS"] = modes[0]
        result["speedup_fast_over_reference"] = {
            "train_step": round(statistics.median(ref_steps) / statistics.median(steps), 2),
            "forward": round(statistics.median(ref_forward) / statistics.median(forward), 2)}
    result["minigrad"] = mode_results
    if args.device == "cuda":
        result["weight_grad"] = weight_grad_report()
    if not args.no_first_step:
        result["first_step"] = first_step_times(args)
    return result


def sweep_steps(size, batch, most):
    """Timed steps for a cell: about SWEEP_WORK exercise steps of work, 2 to ``most``."""
    work = batch * size * size / (32 * IMAGE_SIZE * IMAGE_SIZE)
    return max(2, min(most, round(SWEEP_WORK / work)))


def ratio_cells(ours, theirs):
    """Medians, fastest, and minigrad / PyTorch ratios of two lists of seconds."""
    cell = {"minigrad_ms": median_ms(ours), "minigrad_min_ms": round(1e3 * min(ours), 3)}
    if theirs:
        cell.update({"torch_ms": median_ms(theirs), "torch_min_ms": round(1e3 * min(theirs), 3),
                     "ratio": round(statistics.median(ours) / statistics.median(theirs), 3),
                     "ratio_min": round(min(ours) / min(theirs), 3)})
    return cell


def run_sweep(args):
    """Training step and inference of every (size, batch) cell, rounds of minigrad
    and PyTorch interleaved within each cell (one PyTorch worker, rebuilt per cell)."""
    os.environ["MINIGRAD_KERNELS"] = args.kernels if args.kernels != "both" else "fast"
    threads = cpu_threads()
    result = {"benchmark": "exercise CNN sweep: sizes x batches", "device": args.device,
              "rounds": args.rounds, "sweep_work_exercise_steps": SWEEP_WORK, "cells": []}
    client = None
    first = True
    try:
        for size in args.sweep_sizes:
            for batch in args.sweep_batches:
                steps = sweep_steps(size, batch, args.steps)
                warmup = 1 if steps < 5 else 2
                runner = MinigradRunner(args.device, batch, args.tf32, size)
                runner.time_steps(1)  # compiles / allocates once
                if first:
                    result["environment"] = describe_environment(args, threads)
                    first = False
                if not args.no_torch and torch_importable():
                    with tempfile.TemporaryDirectory() as tmp:
                        weights = Path(tmp) / "weights.npz"
                        np.savez(weights, **{k: np.asarray(v)
                                             for k, v in runner.state_dict().items()})
                        if client is None:
                            sized = argparse.Namespace(**vars(args))
                            sized.batch_size, sized.size = batch, size
                            client = TorchClient(sized, threads, weights)
                            result["torch"] = {"version": client.info["version"],
                                               "threads": client.info["threads"]}
                        else:
                            client.setup(batch, size, weights)
                train = interleaved(runner, client, args, "steps", steps, warmup)
                infer = interleaved(runner, client, args, "forward", steps, warmup)
                cell = {"size": size, "batch": batch, "steps": steps, "warmup": warmup,
                        "train": ratio_cells(*train), "inference": ratio_cells(*infer)}
                result["cells"].append(cell)
                print(sweep_row(cell), file=sys.stderr, flush=True)
                del runner
                if args.device == "cpu":
                    from kernels.cpu._buffers import POOL
                    POOL.clear()  # the next cell's shapes differ: give the memory back
    finally:
        if client is not None:
            client.close()
    return result


def sweep_row(cell):
    """One markdown table row: size, batch, train and inference ms and ratios."""
    parts = [str(cell["size"]), str(cell["batch"])]
    for kind in ("train", "inference"):
        c = cell[kind]
        parts.append(f'{c["minigrad_ms"]:.1f}')
        if "torch_ms" in c:
            parts += [f'{c["torch_ms"]:.1f}', f'{c["ratio"]:.2f} / {c["ratio_min"]:.2f}']
    return "| " + " | ".join(parts) + " |"


def main(argv=None):
    args = parse_args(argv)
    if args.worker == "torch":
        return torch_worker()
    if args.worker == "first-step":
        return first_step_worker(args)
    saved_mode = os.environ.get("MINIGRAD_KERNELS")
    try:
        result = run_sweep(args) if args.sweep else run(args)
    finally:  # run() switches kernel tables through the variable; leave it as found
        if saved_mode is None:
            os.environ.pop("MINIGRAD_KERNELS", None)
        else:
            os.environ["MINIGRAD_KERNELS"] = saved_mode
    emit_json(result, args.json)


if __name__ == "__main__":
    main()
