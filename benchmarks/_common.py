"""What the benchmark scripts share: the checkout on sys.path, the batch, and timing.

The scripts import it as ``_common`` after putting their own folder on ``sys.path``
(they run as ``python benchmarks/x.py``, as worker subprocesses of themselves, and
train_step.py is also loaded by path from tests/test_kernels_cpu_benchmark.py).
"""
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


def make_batch(batch_size, seed=0):
    """A fixed random batch: float32 NCHW images and integer labels."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, 3, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    labels = rng.integers(0, CLASSES, batch_size)
    return images, labels


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


def time_calls(call, sync, steps):
    """Per-call seconds (synchronised each call), and seconds per call back to back."""
    times = time_each(call, sync, steps)
    start = time.perf_counter()
    for _ in range(steps):
        call()
    sync()
    return times, (time.perf_counter() - start) / steps
