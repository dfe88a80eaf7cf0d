#!/usr/bin/env bash
# The whole GPU check in one run: the `gpu`-marked tests, then the GPU training-step
# benchmark, then the CUDA-graph benchmark (eager vs graphed steps, the graph-safe
# GEMM vs cuBLAS), each with its output written under $OUT.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh
#
# Installs nothing: it runs the tree as it is (PYTHONPATH=.) with the Python that
# already has CuPy. Each part has a time limit so a hang cannot eat the whole GPU
# lease; override with GPU_TEST_TIMEOUT / BENCH_TIMEOUT / GRAPH_BENCH_TIMEOUT (seconds).
# Exits non-zero when any part failed; $OUT/summary.txt says which.
set -u

cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/runs/gpu_check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "${PYTHON:-}" ]; then :
elif command -v python >/dev/null 2>&1; then PYTHON=python
else PYTHON=python3
fi
GPU_TEST_TIMEOUT="${GPU_TEST_TIMEOUT:-360}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-180}"
GRAPH_BENCH_TIMEOUT="${GRAPH_BENCH_TIMEOUT:-150}"

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    "$PYTHON" - <<'EOF'
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as exc:
    print("cupy unusable:", exc)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.cuda.is_available())
except Exception as exc:
    print("torch unavailable:", exc)
EOF
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

# 1. The gpu-marked tests (every CUDA kernel against the reference, graph replay, ...).
if "$PYTHON" -c "import pytest" 2>/dev/null; then
    timeout "$GPU_TEST_TIMEOUT" "$PYTHON" -m pytest -m gpu -v -rs -p no:cacheprovider \
        --junitxml="$OUT/gpu_tests.xml" tests > "$OUT/gpu_tests.txt" 2>&1
    tests_status=$?
else
    echo "pytest is not installed for $PYTHON: the gpu tests did not run" > "$OUT/gpu_tests.txt"
    tests_status=127
fi

# 2. The training-step benchmark on the GPU (JSON on stdout, progress on stderr).
if [ -f benchmarks/train_step.py ]; then
    timeout "$BENCH_TIMEOUT" "$PYTHON" benchmarks/train_step.py --device cuda \
        > "$OUT/train_step_cuda.json" 2> "$OUT/train_step_cuda.stderr"
    bench_status=$?
else
    echo "benchmarks/train_step.py does not exist yet" > "$OUT/train_step_cuda.stderr"
    bench_status=127
fi

# 3. The whole training step as a replayed CUDA graph (minigrad.cuda.graphed_step) beside
#    the eager step, PyTorch's eager and graphed steps where it imports, and the GEMMs.
if [ -f benchmarks/cuda_graph.py ]; then
    timeout "$GRAPH_BENCH_TIMEOUT" "$PYTHON" benchmarks/cuda_graph.py --steps 30 \
        --json "$OUT/cuda_graph.json" > /dev/null 2> "$OUT/cuda_graph.stderr"
    graph_status=$?
else
    echo "benchmarks/cuda_graph.py does not exist" > "$OUT/cuda_graph.stderr"
    graph_status=127
fi

{
    echo "gpu tests: exit $tests_status (124 = timed out after ${GPU_TEST_TIMEOUT}s)"
    tail -n 25 "$OUT/gpu_tests.txt"
    echo
    echo "train_step --device cuda: exit $bench_status (124 = timed out after ${BENCH_TIMEOUT}s)"
    cat "$OUT/train_step_cuda.json" 2>/dev/null
    tail -n 15 "$OUT/train_step_cuda.stderr"
    echo
    echo "cuda_graph: exit $graph_status (124 = timed out after ${GRAPH_BENCH_TIMEOUT}s)"
    cat "$OUT/cuda_graph.json" 2>/dev/null
    tail -n 15 "$OUT/cuda_graph.stderr"
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"

[ "$tests_status" -eq 0 ] && [ "$bench_status" -eq 0 ] && [ "$graph_status" -eq 0 ]
