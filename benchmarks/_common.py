"""What the benchmark scripts share: the checkout on sys.path, the batch, and timing.

The scripts import it as ``_common`` after putting their own folder on ``sys.path``
(they run as ``python benchmarks/x.py``, as worker subprocesses of themselves, and
train_step.py is also loaded by path from tests/benchmarks/test_kernels_cpu_benchmark.py).
"""
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402  (after the path set-up)

IMAGE_SIZE = 80
CLASSES = 4


def cpu_model():
    """The CPU's name as /proc/cpuinfo gives it ("model name"), with its family and
    model numbers and widest vector extension where the name alone is vague (a
    virtual machine's "AMD EPYC" spans several generations), else the platform's."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        flags = set(fields.get("flags", "").split())
        vector = next((v for v in ("avx512f", "avx2", "avx", "sse4_2") if v in flags), None)
        name += f" (family {fields['cpu family']} model {fields['model']}"
        name += f", {vector})" if vector else ")"
    return name


def make_batch(batch_size, seed=0, size=IMAGE_SIZE):
    """A fixed random batch: float32 NCHW size x size images and integer labels."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, 3, size, size)).astype(np.float32)
    labels = rng.integers(0, CLASSES, batch_size)
    return images, labels


def emit_json(result, path=None):
    """Print ``result`` as indented JSON, and write the same text to ``path`` if given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def median_ms(times, digits=3):
    """The median of ``times`` (seconds) in milliseconds, rounded to ``digits``."""
    return round(1e3 * statistics.median(times), digits)


def time_each(call, sync, steps):
    """Seconds of each of ``steps`` calls, each one waited for with ``sync()``."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return times


def time_forward_backward(forward, backward, reset, sync, steps, warmup):
    """Median forward and backward ms over ``steps`` repeats after ``warmup`` untimed
    ones: ``reset()`` (untimed) clears gradients, ``y = forward()`` and ``backward(y)``
    are each waited for with ``sync()``. Serves both frameworks' per-layer rows."""
    fwd, bwd = [], []
    for repeat in range(warmup + steps):
        reset()
        start = time.perf_counter()
        y = forward()
        sync()
        middle = time.perf_counter()
        backward(y)
        sync()
        end = time.perf_counter()
        if repeat >= warmup:
            fwd.append(middle - start)
            bwd.append(end - middle)
    return {"forward_ms": median_ms(fwd), "backward_ms": median_ms(bwd)}


def time_inference(model, no_grad, x, sync, steps):
    """Seconds of each of ``steps`` forward passes of ``model`` in eval mode under
    ``no_grad()`` (minigrad's or PyTorch's); the model is left in training mode."""
    model.eval()
    with no_grad():
        times = time_each(lambda: model(x), sync, steps)
    model.train()
    return times


def time_calls(call, sync, steps):
    """Per-call seconds (synchronised each call), and seconds per call back to back."""
    times = time_each(call, sync, steps)
    start = time.perf_counter()
    for _ in range(steps):
        call()
    sync()
    return times, (time.perf_counter() - start) / steps


def torch_exercise_cnn(nn, size=IMAGE_SIZE, classes=CLASSES):
    """The exercise CNN (minigrad.models.exercise_cnn with ReLU) for size x size images
    in PyTorch; ``nn`` is ``torch.nn``, passed in so that this module never imports
    PyTorch."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * (size // 8) ** 2, 128), nn.ReLU(),
        nn.Linear(128, classes))


def weight_grad_report():
    """The GPU convolutions' weight-gradient mode (MINIGRAD_CUDA_WGRAD) and, under
    "auto", the milliseconds it measured for each split count of each shape."""
    from kernels.cuda import conv
    return {"mode": conv.weight_grad_mode(), "tuning": conv.weight_grad_tuning()}


def cupy_peak_allocated_bytes(cp, run):
    """The most bytes CuPy's default memory pool had handed out at once while ``run()``
    ran (what PyTorch calls max_memory_allocated), and the bytes the pool held
    afterwards (its max_memory_reserved). ``cp`` is the cupy module.

    CuPy keeps no high-water mark, so every allocation goes through a wrapper that
    reads the pool's count: a few microseconds each, so never around timed steps.
    """
    pool = cp.get_default_memory_pool()
    peak = pool.used_bytes()

    def tracking_malloc(size):
        nonlocal peak
        memory = pool.malloc(size)
        peak = max(peak, pool.used_bytes())
        return memory

    with cp.cuda.using_allocator(tracking_malloc):
        run()
    cp.cuda.Device().synchronize()
    return peak, pool.total_bytes()
