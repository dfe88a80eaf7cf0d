"""Run the CUDA C kernels of kernels/cuda on the CPU, to test their logic with no GPU.

Each source (with its common.cuh prelude, exactly the text NVRTC compiles) is built
by the host C++ compiler against a small shim that defines the CUDA built-ins:
``threadIdx``/``blockIdx`` are thread-local, ``__syncthreads`` and warp shuffles are
barriers among real OS threads, ``__shared__`` variables are statics (blocks run one
at a time, so a static is exactly one block's shared memory). A launch starts
``blockDim.x`` Python threads that each walk the grid's blocks in order; ctypes drops
the GIL during each call, so the threads of a block really run side by side and
meet at the barriers.

``FakeCupy`` stands in for the ``cupy`` module inside the kernels.cuda wrappers
(NumPy arrays for device arrays, NumPy's matmul for cuBLAS, this emulator for
``RawModule``), so the wrappers' own Python - argument order, C types, launch
geometry - runs too. What this cannot show: speed, real memory-coalescing, races
that need a GPU's timing, and differences between CUDA's and glibc's exp/log.
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SHIM = r"""
#include <barrier>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <memory>
using std::min; using std::max;
using std::exp; using std::log; using std::sqrt; using std::pow;

struct dim3 { unsigned int x = 1, y = 1, z = 1; };
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

static std::unique_ptr<std::barrier<>> block_barrier;
static std::unique_ptr<std::barrier<>> warp_barriers[32];
static double warp_slots[32][32];

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

inline void __syncthreads() { block_barrier->arrive_and_wait(); }

inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline double __longlong_as_double(long long v) { double d; std::memcpy(&d, &v, 8); return d; }

// Every lane of the warp must call this together (as CUDA's full-mask shuffle
// requires); the lanes swap values through warp_slots between two barriers.
template <typename T> T __shfl_xor_sync(unsigned int, T v, int lane_mask) {
    const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    T* slots = reinterpret_cast<T*>(warp_slots[warp]);
    slots[lane] = v;
    warp_barriers[warp]->arrive_and_wait();
    T other = slots[lane ^ lane_mask];
    warp_barriers[warp]->arrive_and_wait();
    return other;
}

extern "C" void emu_launch_begin(unsigned gx, unsigned gy, unsigned bx) {
    gridDim.x = gx; gridDim.y = gy; gridDim.z = 1;
    blockDim.x = bx; blockDim.y = 1; blockDim.z = 1;
    block_barrier.reset(new std::barrier<>(bx));
    for (unsigned w = 0; w < 32; ++w)
        warp_barriers[w].reset(w * 32 < bx ? new std::barrier<>(32) : nullptr);
}

// Called by every thread before each block: waits until the whole previous block
// is done (its statics, i.e. shared memory, may be reused), then sets the indices.
extern "C" void emu_enter_block(unsigned bx, unsigned by, unsigned tx) {
    block_barrier->arrive_and_wait();
    blockIdx.x = bx; blockIdx.y = by; blockIdx.z = 0;
    threadIdx.x = tx; threadIdx.y = 0; threadIdx.z = 0;
}
"""

LAUNCH_TIMEOUT_S = 60

# Kernels that index their array arguments with leading dimensions and batch strides
# passed beside them (gemm.cu), so transposed and strided views are legitimate.
STRIDED_KERNELS = ("gemm_",)

_C_TYPES = {
    np.dtype(np.int32): ctypes.c_int32, np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.uint64): ctypes.c_uint64, np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}


# The C spelling of each scalar parameter type -> the NumPy scalar type CuPy must be
# handed for it (CuPy packs kernel arguments by the size of what it is given, so a
# np.int64 passed for an `int` would shift every later argument on a GPU).
_SCALAR_PARAMETERS = {
    "int": np.int32, "i64": np.int64, "long long": np.int64, "u64": np.uint64,
    "unsigned long long": np.uint64, "float": np.float32, "double": np.float64,
}


def kernel_signatures(code):
    """{kernel name: [parameter type, ...]} of the extern "C" kernels in ``code``.

    Read from the preprocessed text, since the kernels are stamped out by macros.
    """
    result = subprocess.run([compiler(), "-E", "-P", "-x", "c++", "-"], input=code,
                            capture_output=True, text=True, check=True)
    signatures = {}
    for name, params in re.findall(r'extern "C" __global__ void (\w+)\s*\(([^)]*)\)',
                                   result.stdout):
        types = []
        for param in params.split(","):
            words = param.replace("*", " * ").split()[:-1]  # drop the parameter name
            words = [w for w in words if w not in ("const", "__restrict__")]
            types.append("pointer" if "*" in words else " ".join(words))
        signatures[name] = types
    return signatures


def check_arguments(name, parameter_types, args):
    """Each argument is what the kernel's C parameter list says, in number and type."""
    assert len(args) == len(parameter_types), (
        f"{name}: {len(args)} arguments for {len(parameter_types)} parameters")
    for i, (ctype, value) in enumerate(zip(parameter_types, args)):
        if ctype == "pointer":
            assert isinstance(value, np.ndarray), f"{name} argument {i}: array expected"
        else:
            expected = _SCALAR_PARAMETERS[ctype]
            assert type(value) is expected, (
                f"{name} argument {i}: C type {ctype} needs {expected.__name__}, "
                f"got {type(value).__name__}")


def compiler():
    """The host C++ compiler, or None."""
    return shutil.which(os.environ.get("CXX", "g++"))


def _build(code):
    """Compile kernel source + shim into a shared library (cached by content)."""
    text = SHIM + "\n" + code
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "minigrad_cuda_emulator"
    cache.mkdir(exist_ok=True)
    library = cache / f"{digest}.so"
    if not library.exists():
        source = cache / f"{digest}.cpp"
        source.write_text(text)
        partial = cache / f"{digest}.{os.getpid()}.tmp.so"
        # -ffp-contract=off mirrors NVRTC's --fmad=false; -O1 keeps the build quick.
        result = subprocess.run(
            [compiler(), "-std=c++20", "-O1", "-ffp-contract=off", "-fPIC", "-shared",
             "-pthread", "-Wall", "-Wno-unused-function", "-o", str(partial), str(source)],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"host build of the CUDA source failed:\n{result.stderr}")
        os.replace(partial, library)  # atomic: a parallel build never loads half a file
    return ctypes.CDLL(str(library))


class EmulatedKernel:
    """One kernel of an EmulatedModule, called like a CuPy RawKernel."""

    def __init__(self, library, name, parameter_types):
        self.library, self.name, self.parameter_types = library, name, parameter_types
        self.function = getattr(library, name)
        self.function.restype = None
        self.launches = []  # (grid, block) of every launch, for geometry checks

    def __call__(self, grid, block, args):
        grid = tuple(grid) + (1,) * (2 - len(grid))
        (threads,) = block
        assert threads % 32 == 0 and threads <= 1024, block
        assert grid[0] >= 1 and 1 <= grid[1] <= 65535, grid
        self.launches.append((grid, block))
        check_arguments(self.name, self.parameter_types, args)
        c_args = [self._c_argument(a, self.name) for a in args]
        self.library.emu_launch_begin(grid[0], grid[1], threads)
        errors = []

        def run(tx):
            try:
                for by in range(grid[1]):
                    for bx in range(grid[0]):
                        self.library.emu_enter_block(bx, by, tx)
                        self.function(*c_args)
            except BaseException as exc:  # surfaced in the launching thread
                errors.append(exc)

        # Daemon threads and a join deadline: a barrier that some threads never reach
        # (a __syncthreads under a divergent branch) fails the test instead of hanging.
        workers = [threading.Thread(target=run, args=(tx,), daemon=True)
                   for tx in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=LAUNCH_TIMEOUT_S)
            if worker.is_alive():
                raise AssertionError(f"{self.name}: emulated launch {grid}x{block} did not "
                                     f"finish in {LAUNCH_TIMEOUT_S} s (barrier deadlock?)")
        if errors:
            raise errors[0]

    @staticmethod
    def _c_argument(value, name):
        if isinstance(value, np.ndarray):
            # As CuPy does, pass the address of the first element; only kernels that
            # are given explicit strides (STRIDED_KERNELS) may receive a view.
            assert value.flags.c_contiguous or name.startswith(STRIDED_KERNELS), \
                f"{name}: kernels take contiguous arrays only"
            return ctypes.c_void_p(value.ctypes.data)
        if isinstance(value, np.generic) and value.dtype in _C_TYPES:
            return _C_TYPES[value.dtype](value.item())
        raise TypeError(f"kernel argument {value!r} ({type(value).__name__}) has no "
                        "explicit C type; pass a NumPy scalar")


class EmulatedModule:
    """Stands in for cupy.RawModule: builds the code for the CPU on first use."""

    kernels_built = []

    def __init__(self, code, options=()):
        self.code, self.options = code, options
        self._library = self._signatures = None

    def get_function(self, name):
        if self._library is None:
            self._library = _build(self.code)
            self._signatures = kernel_signatures(self.code)
        kernel = EmulatedKernel(self._library, name, self._signatures[name])
        EmulatedModule.kernels_built.append((name, kernel))
        return kernel


class FakeStream:
    """A cupy.cuda.Stream stand-in: its handle and whether it is capturing a graph."""

    def __init__(self, ptr=0, capturing=False):
        self.ptr, self.capturing = ptr, capturing
        self.queries = 0  # how often CUDA would have been asked

    def is_capturing(self):
        self.queries += 1
        return self.capturing


class FakeEvent:
    """A cupy.cuda.Event stand-in: the emulated kernels finish inside their launch
    call, so recording an event is reading the clock."""

    def __init__(self):
        self.time = None

    def record(self, stream=None):
        self.time = time.perf_counter()

    def synchronize(self):
        pass


class FakeCuda:
    """The slice of cupy.cuda the wrappers use. ``current_stream`` is the legacy
    default stream unless a test swaps in a capturing FakeStream."""

    current_stream = FakeStream()
    Event = FakeEvent

    @classmethod
    def get_current_stream(cls):
        return cls.current_stream

    @staticmethod
    def get_elapsed_time(start, stop):
        """Milliseconds between two recorded events, as cupy.cuda.get_elapsed_time."""
        return (stop.time - start.time) * 1e3


def use_fake_cupy(monkeypatch, block=64):
    """Point every module of kernels.cuda that refers to ``cp`` at :class:`FakeCupy`.

    Also starts from empty compile caches (modules built under another ``cp`` must not
    be reused), an empty :attr:`EmulatedModule.kernels_built` log, and a kernels.cuda
    block of ``block`` threads: the emulation runs one OS thread per CUDA thread, and
    the kernels take any multiple of 32 (the GEMM keeps its own 256).
    """
    import importlib
    import pkgutil

    import kernels.cuda
    from kernels.cuda import compile as cuda_compile
    for info in pkgutil.iter_modules(kernels.cuda.__path__):
        module = importlib.import_module(f"kernels.cuda.{info.name}")
        if hasattr(module, "cp"):
            monkeypatch.setattr(module, "cp", FakeCupy)
    monkeypatch.setattr(cuda_compile, "_modules", {})
    monkeypatch.setattr(cuda_compile, "_kernels", {})
    monkeypatch.setattr(cuda_compile, "BLOCK", block)
    monkeypatch.setattr(EmulatedModule, "kernels_built", [])


class FakeCupy:
    """The slice of the cupy module the kernels.cuda wrappers use, on NumPy."""

    ndarray = np.ndarray
    RawModule = EmulatedModule
    cuda = FakeCuda
    lib = np.lib  # lib.stride_tricks.as_strided

    @staticmethod
    def ascontiguousarray(a, dtype=None):
        return np.ascontiguousarray(a, dtype=dtype)

    asarray = staticmethod(np.asarray)
    empty = staticmethod(np.empty)
    empty_like = staticmethod(np.empty_like)
    matmul = staticmethod(np.matmul)
    broadcast_to = staticmethod(np.broadcast_to)
    swapaxes = staticmethod(np.swapaxes)
    may_share_memory = staticmethod(np.may_share_memory)
