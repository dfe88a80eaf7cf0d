"""The CUDA kernels and their Python wrappers, run on the CPU by tests/cuda_emulator.py.

Not a substitute for tests/test_kernels_cuda.py on a GPU, but it runs the same
checks, on the same CUDA C text, in CI: the index math, bounds checks, window
ranges of the gathers, tie-breaking, block and warp reductions, the hash, and the
wrappers' argument lists and launch geometry. Needs a host C++20 compiler (g++).
"""
import numpy as np
import pytest

import cuda_kernel_checks as checks
from cuda_emulator import (EmulatedModule, check_arguments, compiler, kernel_signatures,
                           use_fake_cupy)

pytestmark = pytest.mark.skipif(compiler() is None,
                                reason="no host C++ compiler (g++) to emulate CUDA with")

@pytest.fixture
def device(monkeypatch):
    """kernels.cuda with CuPy replaced by NumPy + the CPU emulation of the kernels."""
    import kernels.cuda as cuda_table
    use_fake_cupy(monkeypatch, block=64)  # one test below uses the real 256
    return checks.Device(table=cuda_table.KERNELS, to_device=np.array, to_host=np.asarray)


class TestKernelTableEmulated(checks.KernelTableSuite):
    @staticmethod
    def device_array(values, dtype):
        return np.array(values, dtype=dtype)


def test_softmax_cross_entropy_out_of_range_label_gives_nan(device):
    logits = np.zeros((2, 3), dtype=np.float32)
    losses, _ = device.table["softmax_cross_entropy_forward"](logits, np.array([1, 3]))
    assert np.isfinite(losses[0]) and np.isnan(losses[1])


def test_launch_geometry_covers_large_planes_with_grid_stride_loops(device, rng):
    """More columns than one grid row holds: the grid-stride loops must finish the job."""
    from kernels.cuda import compile as cuda_compile
    # A 1 x 1 x 3 x 700 image pooled 1x2: 350 outputs per plane, two x-blocks.
    case = (1, 1, 3, 700, (1, 2), (1, 2), (0, 0))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cuda_compile, "MAX_GRID_X", 1)  # force the grid-stride path
        checks.check_max_pool2d(device, rng, case, np.float64)
        checks.check_avg_pool2d(device, rng, case, np.float64)
    launches = [k.launches for name, k in EmulatedModule.kernels_built
                if name.startswith("max_pool_forward")]
    assert launches and all(grid[0] == 1 for grid, _ in launches[0])


def test_wrappers_reject_mixed_dtypes_and_wrong_gradient_shapes(device, rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3))
    with pytest.raises(TypeError, match="share one dtype"):
        device.table["conv2d_forward"](x, w, None, (1, 1), (0, 0))
    y, cache = device.table["max_pool2d_forward"](x, (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError, match="does not match"):
        device.table["max_pool2d_backward"](np.ones((1, 2, 3, 3), np.float32), cache)
    with pytest.raises(TypeError, match="float32 or float64"):
        device.table["avg_pool2d_forward"](x.astype(np.float16), (2, 2), (2, 2), (0, 0))


def test_the_block_size_used_on_the_gpu(device, rng, monkeypatch):
    """The other tests launch 64-thread blocks to run fast; the GPU gets 256 (8 warps)."""
    from kernels.cuda import compile as cuda_compile
    monkeypatch.setattr(cuda_compile, "BLOCK", 256)
    checks.check_conv2d(device, rng, checks.CONV_CASES[1], np.float32)
    checks.check_softmax_cross_entropy(device, rng, (19, 37), np.float32)
    assert all(block == (256,) for _, k in EmulatedModule.kernels_built
               for _, block in k.launches)


def test_emulator_holds_arguments_to_the_c_parameter_types():
    """A np.int64 where the kernel takes an int would garble every later argument."""
    from kernels.cuda import compile as cuda_compile
    signatures = kernel_signatures(cuda_compile.source_text("random.cu"))
    types = signatures["dropout_mask_f32"]
    assert types == ["pointer", "i64", "u64", "pointer", "int", "u64", "u64", "double"]
    good = (np.empty(3, np.float32), np.int64(3), np.uint64(1), np.empty(1, np.uint64),
            np.int32(0), np.uint64(0), np.uint64(0), np.float64(1.0))
    check_arguments("dropout_mask_f32", types, good)
    bad = good[:4] + (np.int64(0),) + good[5:]
    with pytest.raises(AssertionError, match="argument 4"):
        check_arguments("dropout_mask_f32", types, bad)
