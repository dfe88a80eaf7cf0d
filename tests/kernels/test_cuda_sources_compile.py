"""Every CUDA source compiles with NVRTC, on a machine with no GPU (CI).

A typo in ``kernels/cuda/*.cu`` should fail here, not wait for a GPU to be found.
Needs ``pip install nvidia-cuda-nvrtc-cu12 "cuda-bindings<13"``: cuda-bindings finds
the NVRTC library that the nvidia-cuda-nvrtc-cu12 wheel installs (through
cuda.pathfinder). Skips only when cuda.bindings itself is not installed; with the
bindings present, a missing or broken NVRTC library is a failure, not a skip.
"""
import re

import pytest

from kernels.cuda import compile as cuda_compile

# Slow (still run in CI): compiles every CUDA source with NVRTC.
pytestmark = pytest.mark.slow

nvrtc = pytest.importorskip(
    "cuda.bindings.nvrtc",
    reason="cuda.bindings is not installed (pip install nvidia-cuda-nvrtc-cu12 "
           "'cuda-bindings<13'); the CUDA sources are not compile-checked")

# Hopper (H100/H200) is the GPU the kernels are written for.
ARCHITECTURE = "90"
SOURCES = sorted(p.name for p in cuda_compile.SOURCE_DIR.glob("*.cu"))


def _check(result, what, program=None):
    """Unpack a cuda.bindings result tuple; fail with NVRTC's message (and log)."""
    status, *values = result
    if status != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        message = nvrtc.nvrtcGetErrorString(status)[1].decode()
        log = _log(program) if program is not None else ""
        pytest.fail(f"{what} failed: {message}\n{log}")
    return values[0] if len(values) == 1 else values


def _log(program):
    size = _check(nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
    log = b" " * size
    _check(nvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
    return log.rstrip(b"\x00 ").decode(errors="replace")


def compile_source(source, target):
    """Compile one source for ``compute_XX`` (returns PTX) or ``sm_XX`` (CUBIN)."""
    text = cuda_compile.source_text(source).encode()
    program = _check(nvrtc.nvrtcCreateProgram(text, source.encode(), 0, [], []),
                     "nvrtcCreateProgram")
    try:
        options = [f"--gpu-architecture={target}".encode()]
        options += [option.encode() for option in cuda_compile.NVRTC_OPTIONS]
        _check(nvrtc.nvrtcCompileProgram(program, len(options), options),
               f"NVRTC compile of kernels/cuda/{source} for {target}", program)
        log = _log(program)
        if target.startswith("compute_"):
            size = _check(nvrtc.nvrtcGetPTXSize(program), "nvrtcGetPTXSize")
            output = b" " * size
            _check(nvrtc.nvrtcGetPTX(program, output), "nvrtcGetPTX")
            output = output.rstrip(b"\x00").decode()
        else:
            size = _check(nvrtc.nvrtcGetCUBINSize(program), "nvrtcGetCUBINSize")
            output = b" " * size
            _check(nvrtc.nvrtcGetCUBIN(program, output), "nvrtcGetCUBIN")
        return output, log
    finally:
        nvrtc.nvrtcDestroyProgram(program)


def test_nvrtc_library_loads():
    """The bindings reach a real NVRTC (a 12.x library: cuda-bindings<13)."""
    major, minor = _check(nvrtc.nvrtcVersion(), "nvrtcVersion")
    assert major >= 12, (major, minor)


def test_every_source_has_registered_entry_points():
    """Each .cu file is known to compile.py, and each registered file exists."""
    assert SOURCES, f"no .cu files found in {cuda_compile.SOURCE_DIR}"
    assert sorted(cuda_compile.ENTRY_POINTS) == SOURCES


@pytest.mark.parametrize("source", SOURCES)
def test_source_compiles_to_ptx_with_every_entry_point(source):
    ptx, log = compile_source(source, f"compute_{ARCHITECTURE}")
    # A warning in our own code is a bug waiting (an unused value, a narrowing).
    assert "warning" not in log.lower(), f"NVRTC warnings in {source}:\n{log}"
    entries = set(re.findall(r"\.entry\s+(\w+)\s*\(", ptx))
    missing = set(cuda_compile.entry_names(source)) - entries
    assert not missing, f"{source} lacks kernels {sorted(missing)}; it defines {sorted(entries)}"


@pytest.mark.parametrize("source", SOURCES)
def test_source_assembles_for_hopper(source):
    """ptxas (inside NVRTC) accepts the code for sm_90: resource limits, registers."""
    cubin, _ = compile_source(source, f"sm_{ARCHITECTURE}")
    assert cubin[:4] == b"\x7fELF"
