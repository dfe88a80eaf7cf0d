"""The training-step benchmark runs end to end on a tiny setting (no timing asserted)."""
import importlib.util
import json
import sys

import pytest

from tests.helpers.repo import ROOT

# The benchmark reports Numba's version and thread settings.
pytest.importorskip("numba", reason="Numba (a declared dependency) is not installed")

SCRIPT = ROOT / "benchmarks" / "train_step.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("train_step_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_reports_every_section(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MINIGRAD_KERNELS", raising=False)
    out = tmp_path / "result.json"
    benchmark = load_benchmark()
    benchmark.main(["--batch-size", "2", "--steps", "1", "--rounds", "1",
                    "--warmup", "0", "--kernels", "both", "--no-torch",
                    "--no-first-step", "--json", str(out)])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    fast = result["minigrad"]["fast"]
    # Every key benchmarks/README.md documents for a run without PyTorch or first steps.
    assert {"train_step_ms", "train_step_min_ms", "images_per_s", "forward_ms", "layers",
            "adam_step_ms", "layers_total_ms", "fused_layers", "peak_rss_mib",
            "rss_change_over_timed_steps_mib"} <= set(fast)
    assert fast["train_step_ms"] > 0 and fast["forward_ms"] > 0
    assert 0 < fast["train_step_min_ms"] <= fast["train_step_ms"]
    assert fast["images_per_s"] > 0
    assert list(fast["layers"])[:3] == ["conv1", "relu1", "pool1"]
    assert list(fast["layers"]) == benchmark.LAYER_NAMES + ["cross_entropy"]
    assert "cross_entropy" in fast["layers"] and fast["adam_step_ms"] > 0
    for row in fast["layers"].values():
        assert set(row) == {"forward_ms", "backward_ms"}
    # The total is the separate rows and Adam; the fused rows are reported beside it.
    parts = fast["adam_step_ms"] + sum(r["forward_ms"] + r["backward_ms"]
                                       for r in fast["layers"].values())
    assert fast["layers_total_ms"] == pytest.approx(parts, abs=2e-3)
    assert list(fast["fused_layers"]) == ["conv1+relu1", "conv2+relu2", "conv3+relu3"]
    for row in fast["fused_layers"].values():
        assert row["forward_ms"] > 0 and row["backward_ms"] > 0
    assert fast["peak_rss_mib"] > 0
    if sys.platform.startswith("linux"):  # read from /proc; None elsewhere
        assert isinstance(fast["rss_change_over_timed_steps_mib"], float)
    assert result["minigrad"]["reference"]["train_step_ms"] > 0
    assert result["minigrad"]["reference"]["forward_ms"] > 0
    assert result["speedup_fast_over_reference"]["train_step"] > 0
    assert result["speedup_fast_over_reference"]["forward"] > 0
    assert result["environment"]["threads"] >= 1
    assert {"python", "numpy", "numba", "threads", "blas_threads", "numba_threads",
            "environment", "cpu_kernels_parallel", "cpu_model"} <= set(result["environment"])
    assert result["environment"]["cpu_model"]
    assert "torch" not in result and "first_step" not in result


def test_sweep_reports_every_cell(tmp_path, monkeypatch, capsys):
    """--sweep: one cell per size x batch, training and inference, steps from the work."""
    monkeypatch.delenv("MINIGRAD_KERNELS", raising=False)
    out = tmp_path / "sweep.json"
    benchmark = load_benchmark()
    benchmark.main(["--sweep", "--sweep-sizes", "8", "16", "--sweep-batches", "1", "3",
                    "--steps", "2", "--rounds", "1", "--no-torch", "--json", str(out)])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert [(c["size"], c["batch"]) for c in result["cells"]] == [(8, 1), (8, 3), (16, 1),
                                                                  (16, 3)]
    for cell in result["cells"]:
        assert cell["steps"] == 2  # tiny cells: as many as --steps allows
        for kind in ("train", "inference"):
            assert 0 < cell[kind]["minigrad_min_ms"] <= cell[kind]["minigrad_ms"]
            assert "ratio" not in cell[kind]  # no PyTorch asked for
    assert result["environment"]["cpu_model"]
    # Big cells get fewer steps: about SWEEP_WORK exercise steps of work, at least 2.
    assert benchmark.sweep_steps(80, 32, 20) == benchmark.SWEEP_WORK
    assert benchmark.sweep_steps(160, 256, 20) == 2
    assert benchmark.sweep_steps(32, 1, 20) == 20


def test_peak_gpu_memory_is_the_pools_high_water_mark():
    """cupy_peak_allocated_bytes, against a stand-in pool: every allocation made while
    the run lasts goes through its wrapper, and the peak is read after each one."""
    import contextlib
    import types
    load_benchmark()  # puts benchmarks/ on sys.path
    import _common

    class Pool:
        def __init__(self):
            self.used = self.total = 0

        def malloc(self, size):
            self.used += size
            self.total = max(self.total, self.used)
            return Block(self, size)

        def used_bytes(self):
            return self.used

        def total_bytes(self):
            return self.total

    class Block:
        def __init__(self, pool, size):
            self.pool, self.size = pool, size

        def free(self):
            self.pool.used -= self.size

    pool = Pool()
    allocator = [pool.malloc]  # CuPy's current allocator

    @contextlib.contextmanager
    def using_allocator(fn):
        allocator.append(fn)
        try:
            yield
        finally:
            allocator.pop()

    cuda = types.SimpleNamespace(using_allocator=using_allocator,
                                 Device=lambda: types.SimpleNamespace(synchronize=lambda: None))
    cp = types.SimpleNamespace(get_default_memory_pool=lambda: pool, cuda=cuda)
    weights = pool.malloc(1000)  # held before the run: part of the peak, as in PyTorch

    def run():
        for _ in range(2):  # two steps: 300 + 500 live at once, then freed
            a, b = allocator[-1](300), allocator[-1](500)
            a.free()
            b.free()
        allocator[-1](200).free()

    assert _common.cupy_peak_allocated_bytes(cp, run) == (1800, 1800)
    assert allocator == [pool.malloc]  # the wrapper is gone afterwards
    weights.free()


def test_the_design_measurements_run_and_name_what_they_compare(tmp_path, capsys):
    """benchmarks/design_measurements.py, which the kernels' comments point to, runs
    (the cheap measurements, one call each) and refuses an unknown name."""
    path = SCRIPT.parent / "design_measurements.py"
    spec = importlib.util.spec_from_file_location("design_measurements", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "design.json"
    module.main(["shape-product", "relu-in-place", "--repeat", "1", "--json", str(out)])
    result = json.loads(out.read_text())
    assert set(result["shape-product"]) == {"np.prod x1000", "math.prod x1000"}
    assert all(t["min_ms"] > 0 for t in result["relu-in-place"].values())
    with pytest.raises(SystemExit):
        module.main(["relu-inplace"])
    assert "unknown measurement 'relu-inplace'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_kernel_design_measurements_leave_the_kernels_as_they_found_them(tmp_path):
    """conv-slices, weight-grad-orientation, openblas-spin and matmul-split change the
    chunk size, the thread counts and the split threshold while they time: all put back."""
    from kernels.cpu import _threads, conv, linalg
    path = SCRIPT.parent / "design_measurements.py"
    spec = importlib.util.spec_from_file_location("design_measurements", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    blas = _threads._BLAS[0]() if _threads._BLAS else None
    before = (_threads.get_num_threads(), conv.CHUNK_BYTES, linalg.PARALLEL_MIN_WORK, blas)
    out = tmp_path / "design.json"
    names = ["conv-slices", "weight-grad-orientation", "openblas-spin", "matmul-split"]
    module.main(names + ["--repeat", "1", "--json", str(out)])
    result = json.loads(out.read_text())
    assert set(result["conv-slices"]) == {"slices of 4 MiB", "whole batch"}
    assert len(result["weight-grad-orientation"]) == 3
    assert len(result["matmul-split"]) == 4
    blas = _threads._BLAS[0]() if _threads._BLAS else None
    assert (_threads.get_num_threads(), conv.CHUNK_BYTES, linalg.PARALLEL_MIN_WORK, blas) == before
