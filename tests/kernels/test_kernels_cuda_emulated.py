"""The CUDA kernels and their Python wrappers, run on the CPU by tests/helpers/cuda_emulator.py.

Not a substitute for tests/kernels/test_kernels_cuda.py on a GPU, but it runs the same
checks, on the same CUDA C text, in CI: the index math, bounds checks, window
ranges of the gathers, tie-breaking, block and warp reductions, the hash, and the
wrappers' argument lists and launch geometry. Needs a host C++20 compiler (g++).
"""
import types

import numpy as np
import pytest

from tests.helpers import cuda_kernel_checks as checks
from tests.helpers.cuda_emulator import (EmulatedModule, check_arguments, compiler,
                                         kernel_signatures, use_fake_cupy)

# Slow (still run in CI): the CUDA kernels run in the CPU emulator.
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(compiler() is None,
                                 reason="no host C++ compiler (g++) to emulate CUDA with")]

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


def test_wrappers_take_what_the_cpu_table_takes_but_reject_wrong_gradient_shapes(device, rng):
    """Mixed and non-float32/64 dtypes are promoted or sent to the reference kernel, as
    by kernels.cpu (same result dtypes); a gradient of the wrong shape is still an error."""
    pytest.importorskip("numba", reason="Numba (a declared dependency) is not installed")
    from kernels.cpu import KERNELS as CPU
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3))  # float64
    y, conv_cache = device.table["conv2d_forward"](x, w, None, (1, 1), (0, 0))
    y_cpu, _ = CPU["conv2d_forward"](x, w, None, (1, 1), (0, 0))
    assert y.dtype == y_cpu.dtype == np.float64
    np.testing.assert_allclose(y, y_cpu, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="does not match"):
        device.table["conv2d_backward"](np.ones((1, 3, 2, 2)), conv_cache)
    _, cache = device.table["max_pool2d_forward"](x, (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError, match="does not match"):
        device.table["max_pool2d_backward"](np.ones((1, 2, 3, 3), np.float32), cache)
    x16 = x.astype(np.float16)
    y16, _ = device.table["avg_pool2d_forward"](x16, (2, 2), (2, 2), (0, 0))
    y16_cpu, _ = CPU["avg_pool2d_forward"](x16, (2, 2), (2, 2), (0, 0))
    assert y16.dtype == y16_cpu.dtype == np.float16
    _, cache = device.table["avg_pool2d_forward"](x, (2, 2), (2, 2), (0, 0))
    with pytest.raises(ValueError, match="does not match"):
        device.table["avg_pool2d_backward"](np.ones((1, 2, 3, 3), np.float32), cache)
    with pytest.raises(ValueError, match="labels of shape"):  # float16: the reference's path
        device.table["softmax_cross_entropy_forward"](x16[0, 0], np.array([0, 1]))


def test_module_to_hands_the_cuda_optimizer_kernels_c_ordered_parameters(device, monkeypatch):
    """cupy.asarray keeps a Fortran-ordered array Fortran-ordered, and the CUDA optimizer
    kernels refuse to update such a parameter in place: backend.to_device, which
    Module.to moves everything with, makes it C-contiguous (0-d buffers staying 0-d).
    cupy.asarray is stood in for by a copy that keeps the layout, as its does;
    tests/test_gpu.py has the real one."""
    from minigrad import backend, nn
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    conv = model[0]
    conv.weight.data = np.asfortranarray(conv.weight.data)
    conv.weight.grad = np.asfortranarray(np.ones_like(conv.weight.data))
    weight = conv.weight.data.copy()
    model.to("cpu")  # already there: nothing moves, the layout stays
    assert conv.weight.data.flags.f_contiguous and not conv.weight.data.flags.c_contiguous
    monkeypatch.setattr(backend, "check_device", lambda name: name)
    xp_for = backend.xp_for
    layout_keeping = types.SimpleNamespace(asarray=lambda array: np.array(array, order="K"))
    monkeypatch.setattr(backend, "xp_for",
                        lambda name: layout_keeping if name == "cuda" else xp_for(name))
    model.to("cuda")
    assert conv.weight.data.flags.c_contiguous and conv.weight.grad.flags.c_contiguous
    np.testing.assert_array_equal(conv.weight.data, weight)
    assert model[1].num_batches_tracked.shape == ()
    state = [np.zeros_like(conv.weight.data) for _ in range(2)]
    device.table["adam_update"](conv.weight.data, conv.weight.grad, *state, lr=0.1,
                                beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                                decoupled_weight_decay=False, step=1)
    assert not np.array_equal(conv.weight.data, weight)


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
