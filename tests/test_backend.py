"""minigrad.backend: kernel tables per device and mode."""
import sys

import numpy as np
import pytest

from minigrad import backend


def test_fast_kernels_that_cannot_load_fall_back_with_one_warning(monkeypatch):
    """Numba missing or broken: the reference kernels serve, and the user is told."""
    monkeypatch.setitem(sys.modules, "kernels.cpu", None)  # importing it raises ImportError
    monkeypatch.setattr(backend, "_tables", {})
    monkeypatch.delenv("MINIGRAD_KERNELS", raising=False)
    with pytest.warns(RuntimeWarning, match="fast cpu kernels could not be loaded"):
        table = backend.kernel_table("cpu")
    from kernels.reference import KERNELS as REFERENCE
    assert table["conv2d_forward"] is REFERENCE["conv2d_forward"]


def test_host_copy_shares_no_memory_with_its_array():
    """What Module.state_dict and Optimizer.state_dict save: later steps leave it alone."""
    array = np.arange(6.0).reshape(2, 3)
    copy = backend.host_copy(array.T)  # a view, not C-ordered: copied as it is
    assert isinstance(copy, np.ndarray) and not np.shares_memory(copy, array)
    np.testing.assert_array_equal(copy, array.T)


def test_every_fast_kernel_overrides_a_reference_kernel_of_the_same_name():
    """A misspelt name in a device table would never be looked up, and the reference
    kernel would silently serve instead."""
    from kernels.cuda import KERNELS as CUDA
    from kernels.reference import KERNELS as REFERENCE
    tables = {"cuda": CUDA}
    try:
        from kernels.cpu import KERNELS as CPU
        tables["cpu"] = CPU
    except ImportError:  # no Numba here: only the CUDA table to check
        pass
    for device, table in tables.items():
        assert set(table) <= set(REFERENCE), (device, sorted(set(table) - set(REFERENCE)))
        assert table, device


def test_a_checkout_shares_one_kernels_package_with_minigrad():
    """In the repository minigrad imports the top-level kernels/ folder (an install maps
    it to minigrad.kernels), so code that imports ``kernels`` sees the very modules
    minigrad runs; kernels/ imports itself relatively, so it works under either name."""
    import pathlib

    import kernels.cpu.conv
    from minigrad import _kernels
    assert _kernels.PACKAGE == "kernels"
    assert _kernels.kernel_module("cpu.conv") is kernels.cpu.conv
    root = pathlib.Path(kernels.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "from kernels" not in text and "import kernels" not in text, path


def test_a_kernel_lookup_needs_its_device():
    """No CPU default: a lookup that forgot the device would run CUDA data on the CPU.
    Names come first and the device last, for one kernel as for several."""
    with pytest.raises(TypeError, match="device"):
        backend.kernel("matmul")
    with pytest.raises(TypeError, match="device"):
        backend.kernels("conv2d_forward", "conv2d_backward")
    with pytest.raises(ValueError, match="unknown device 'matmul'"):
        backend.kernel("cpu", "matmul")  # the order swapped
    with pytest.raises(KeyError, match="no kernel named 'matmull' in the cpu table"):
        backend.kernel("matmull", "cpu")
    forward, backward = backend.kernels("conv2d_forward", "conv2d_backward", device="cpu")
    table = backend.kernel_table("cpu")
    assert (forward, backward) == (table["conv2d_forward"], table["conv2d_backward"])
    assert backend.kernel("matmul", "cpu") is table["matmul"]
