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


def test_the_shared_helpers_have_one_home():
    """backend.is_array, utils.pair/is_number/unwrap/as_numpy: what nn, functional,
    data, train and tune import instead of keeping their own copies."""
    import minigrad as mg
    from minigrad import utils
    t = mg.tensor([1.0, 2.0])
    assert backend.is_array(np.zeros(2)) and not backend.is_array(t)
    assert not any(backend.is_array(v) for v in ([1.0], 1.0, np.float32(1)))
    assert utils.pair(3, "stride", "conv2d", 1) == (3, 3)
    assert utils.pair([2, np.int64(4)], "size", "RandomCrop", 1) == (2, 4)
    with pytest.raises(TypeError, match=r"^RandomCrop: size must be an int or a pair"):
        utils.pair((2, 2, 2), "size", "RandomCrop", 1)
    with pytest.raises(TypeError, match="stride must be an int"):
        utils.pair(True, "stride", "conv2d", 1)  # a bool is no int, as torch
    with pytest.raises(ValueError, match=r"^ImageFolder: size must be at least 1, got \(0, 4\)"):
        utils.pair((0, 4), "size", "ImageFolder", 1)
    numbers = (1, 2.5, True, np.float32(1), np.array(3.0), np.int64(2), mg.tensor(1.0))
    assert all(utils.is_number(v) for v in numbers)
    assert not any(utils.is_number(v) for v in ("1", None, [1.0], np.zeros(2), 1j, t))
    assert utils.unwrap(t) is t.data and utils.unwrap([1]) == [1]
    np.testing.assert_array_equal(utils.as_numpy(t), [1.0, 2.0])
    assert utils.as_numpy([[1, 2]]).shape == (1, 2)
