#!/usr/bin/env bash
# The whole GPU check in one run, most important part first, everything under $OUT:
#
#   1. tests/test_cuda_graph_gpu.py: graphed steps with both capture GEMMs, the GEMMs
#      themselves, memory; in two processes, the tiled GEMM's tests (1a) and then those
#      of cuBLAS called past CuPy's guard (1b), so that a crash in the newer cuBLAS
#      path cannot take the other results with it;
#   2. benchmarks/cuda_graph.py: eager vs graphed-custom vs graphed-cuBLAS (and
#      PyTorch) at batch 32 and 256, and each GEMM of the exercise (without the cuBLAS
#      graph if 1b crashed the interpreter);
#   3. the other `gpu`-marked tests (every CUDA kernel against the reference, ...);
#   4. benchmarks/train_step.py --device cuda (batch 32 and 256);
#   5. the same at batch 256 with --tf32 (TF32 in both frameworks);
#   6. MINIGRAD_CUDA_WGRAD=auto (each convolution's weight gradient timed as one GEMM
#      and split over images, the fastest kept) against 4 and 2, with what it measured.
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh
#
# Installs nothing: it runs the tree as it is (PYTHONPATH=.) with the Python that
# already has CuPy. Each part has its own time limit (SIGINT first, so pytest and the
# benchmarks still write what they have; SIGKILL 10 s later), and no part may run past
# the whole check's budget, GPU_CHECK_BUDGET seconds (default 500). Override a part's
# limit with GRAPH_TEST_TIMEOUT (each of 1a and 1b), GRAPH_BENCH_TIMEOUT, GPU_TEST_TIMEOUT,
# BENCH_TIMEOUT.
# $OUT/summary.txt grows after every part, so even a check cut short says how far it
# got; $OUT/headline.txt holds the benchmark's key numbers. Exits non-zero when any
# part failed.
set -u

START=$SECONDS
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/runs/gpu_check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export PYTHONFAULTHANDLER=1  # a crash (say, in a ctypes call) still prints a traceback
if [ -n "${PYTHON:-}" ]; then :
elif command -v python >/dev/null 2>&1; then PYTHON=python
else PYTHON=python3
fi
BUDGET="${GPU_CHECK_BUDGET:-500}"
GRAPH_TEST_TIMEOUT="${GRAPH_TEST_TIMEOUT:-75}"
GRAPH_BENCH_TIMEOUT="${GRAPH_BENCH_TIMEOUT:-75}"
GPU_TEST_TIMEOUT="${GPU_TEST_TIMEOUT:-120}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-25}"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
failed=0
status=0

# run_part NAME LIMIT LOGFILE COMMAND...: run with the smaller of LIMIT and what is left
# of the budget (keeping 5 s for the summary), log everything, record the outcome.
run_part() {
    local name=$1 limit=$2 log=$3
    shift 3
    local left=$((BUDGET - (SECONDS - START) - 5))
    if [ "$left" -lt "$limit" ]; then limit=$left; fi
    if [ "$limit" -lt 5 ]; then
        echo "== $name: SKIPPED, the ${BUDGET}s budget is spent" | tee -a "$SUMMARY"
        failed=1
        status=125
        return
    fi
    local began=$SECONDS
    echo "== $name (limit ${limit}s) ..."
    timeout -s INT -k 10 "$limit" "$@" > "$log" 2>&1
    status=$?
    local note=""
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        note=" (TIMED OUT after ${limit}s)"
    elif [ "$status" -gt 128 ]; then
        note=" (CRASHED: signal $((status - 128)); see the end of the log)"
    fi
    [ "$status" -ne 0 ] && failed=1
    echo "== $name: exit $status$note in $((SECONDS - began))s, log $(basename "$log")" \
        | tee -a "$SUMMARY"
}

# 0. Where we are.
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1
    git rev-parse --short HEAD 2>/dev/null && git status --short --untracked-files=no 2>/dev/null | head -n 40
    env | grep -E '^(MINIGRAD|CUPY|CUDA|NVIDIA_TF32)' | sort
    timeout 30 "$PYTHON" - <<'EOF'
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion(),
          "devices", cupy.cuda.runtime.getDeviceCount())
    from kernels.cuda import cublas_capture
    print("cublas_capture", cublas_capture.describe())
except Exception as exc:
    print("cupy or cublas_capture unusable:", type(exc).__name__, exc)
EOF
} > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"
echo "== environment: $((SECONDS - START))s" >> "$SUMMARY"

CAPTURE_GEMMS=(custom cublas)
PYTEST=("$PYTHON" -m pytest -v -rfEs --tb=short -p no:cacheprovider --durations=15
        -o faulthandler_timeout=45)
if ! "$PYTHON" -c "import pytest" 2>/dev/null; then
    echo "== pytest is not installed for $PYTHON: no tests ran" | tee -a "$SUMMARY"
    failed=1
else
    # 1a. The CUDA-graph tests that do not involve the cuBLAS capture path.
    run_part "graph tests, tiled GEMM (tests/test_cuda_graph_gpu.py -k 'not cublas')" \
        "$GRAPH_TEST_TIMEOUT" "$OUT/graph_tests_custom.txt" "${PYTEST[@]}" -m gpu \
        --junitxml="$OUT/graph_tests_custom.xml" -k "not cublas" tests/test_cuda_graph_gpu.py
    tail -n 40 "$OUT/graph_tests_custom.txt" 2>/dev/null \
        | grep -E "^(FAILED|ERROR|SKIPPED)|passed|failed|Fatal" >> "$SUMMARY"
    # 1b. ... and those that do: cuBLAS called past CuPy's guard.
    run_part "graph tests, cuBLAS (tests/test_cuda_graph_gpu.py -k cublas)" \
        "$GRAPH_TEST_TIMEOUT" "$OUT/graph_tests_cublas.txt" "${PYTEST[@]}" -m gpu \
        --junitxml="$OUT/graph_tests_cublas.xml" -k cublas tests/test_cuda_graph_gpu.py
    tail -n 40 "$OUT/graph_tests_cublas.txt" 2>/dev/null \
        | grep -E "^(FAILED|ERROR|SKIPPED)|passed|failed|Fatal" >> "$SUMMARY"
    if [ "$status" -gt 128 ] && [ "$status" -ne 137 ]; then
        CAPTURE_GEMMS=(custom)
        echo "== the cuBLAS tests crashed: the benchmark graphs with the tiled GEMM only" \
            | tee -a "$SUMMARY"
    fi
fi

# 2. Eager vs graphed (custom and cuBLAS GEMMs) vs PyTorch, and the GEMMs.
run_part "cuda_graph benchmark" "$GRAPH_BENCH_TIMEOUT" "$OUT/cuda_graph.log" \
    "$PYTHON" benchmarks/cuda_graph.py --batch-sizes 32 256 --steps 20 --warmup 3 \
    --capture-gemms "${CAPTURE_GEMMS[@]}" --json "$OUT/cuda_graph.json"
timeout 20 "$PYTHON" - "$OUT/cuda_graph.json" > "$OUT/headline.txt" 2>&1 <<'EOF'
import json, sys
try:
    result = json.load(open(sys.argv[1]))
except Exception as exc:
    sys.exit(f"no cuda_graph.json to read ({exc})")
print("gpu:", result.get("gpu"), "| cupy", result.get("cupy"))
print("cublas_capture:", json.dumps(result.get("cublas_capture")))
print("graph memory nodes (high, bytes):", result.get("graph_memory_node_high_bytes"))
print(f"{'batch':>5} {'eager':>8} {'g-custom':>9} {'g-cublas':>9} {'torch-e':>8} "
      f"{'torch-g':>8}  (median ms/step)   final loss eager/custom/cublas")
for batch, entry in result.get("batches", {}).items():
    ours, torch = entry.get("minigrad", {}), entry.get("torch", {})
    graphed = ours.get("graphed", {})
    def ms(d, key):
        value = d.get(key)
        return f"{value:8.3f}" if isinstance(value, (int, float)) else f"{'-':>8}"
    losses = [ours.get("eager_final_loss")] + [graphed.get(g, {}).get("final_loss")
                                               for g in ("custom", "cublas")]
    print(f"{batch:>5} {ms(ours, 'eager_ms')} {ms(ours, 'graphed_custom_ms'):>9} "
          f"{ms(ours, 'graphed_cublas_ms'):>9} {ms(torch, 'eager_ms')} "
          f"{ms(torch, 'graphed_ms')}   {losses}")
    for name, part in [("eager", ours.get("eager", {}))] + list(graphed.items()) + \
            [("torch", torch)]:
        if isinstance(part, dict) and "error" in part:
            print(f"      {name} FAILED: {part['error']}")
for batch in (32, 256):
    rows = result.get(f"gemms_batch_{batch}")
    for row in rows if isinstance(rows, list) else []:
        print(f"  b{batch} {row['gemm']:>20}: cupy.matmul {row.get('cublas_ms')} ms, cuBLAS "
              f"direct {row.get('cublas_direct_ms')} ms, tiled {row.get('graph_safe_ms')} ms"
              + (f", per-image batched+sum {row['per_image_batched_then_sum_ms']} ms"
                 if "per_image_batched_then_sum_ms" in row else ""))
EOF
cat "$OUT/headline.txt" >> "$SUMMARY"

# 3. Every other gpu-marked test file.
others=()
for file in tests/test_*.py tests/*/test_*.py; do
    [ "$file" = tests/test_cuda_graph_gpu.py ] && continue
    grep -q "mark.gpu" "$file" && others+=("$file")
done
if [ "${#others[@]}" -gt 0 ] && "$PYTHON" -c "import pytest" 2>/dev/null; then
    run_part "other gpu tests (${others[*]})" "$GPU_TEST_TIMEOUT" "$OUT/gpu_tests.txt" \
        "${PYTEST[@]}" -m gpu --junitxml="$OUT/gpu_tests.xml" "${others[@]}"
    tail -n 40 "$OUT/gpu_tests.txt" 2>/dev/null \
        | grep -E "^(FAILED|ERROR|SKIPPED)|passed|failed|Fatal" >> "$SUMMARY"
fi

# 4. The training-step benchmark on the GPU, batch 32 and 256 (per-layer times, with
#    PyTorch's, say where the time goes).
for batch in 32 256; do
    run_part "train_step --device cuda --batch-size $batch" "$BENCH_TIMEOUT" \
        "$OUT/train_step_cuda_b$batch.stderr" \
        "$PYTHON" benchmarks/train_step.py --device cuda --no-first-step --rounds 2 \
        --steps 20 --batch-size "$batch" --json "$OUT/train_step_cuda_b$batch.json"
done
# 5. The TF32 opt-in (both frameworks), batch 256: what tensor cores are worth here.
run_part "train_step --device cuda --batch-size 256 --tf32" "$BENCH_TIMEOUT" \
    "$OUT/train_step_cuda_b256_tf32.stderr" \
    "$PYTHON" benchmarks/train_step.py --device cuda --no-first-step --rounds 2 \
    --steps 20 --batch-size 256 --tf32 --json "$OUT/train_step_cuda_b256_tf32.json"
# 6. The weight gradient timed per shape (MINIGRAD_CUDA_WGRAD=auto: one GEMM, the
#    split heuristic's slices of images, one slice per image; the fastest is kept)
#    against part 4: eager at 32 and 256, and graphed with cuBLAS (cuda_graph.py, no
#    PyTorch, and no GEMM timings: part 2 has them). Each JSON's "weight_grad" holds
#    the milliseconds measured for every choice.
for batch in 32 256; do
    run_part "train_step --device cuda --batch-size $batch, wgrad auto" "$BENCH_TIMEOUT" \
        "$OUT/train_step_cuda_b${batch}_wgrad_auto.stderr" \
        env MINIGRAD_CUDA_WGRAD=auto "$PYTHON" benchmarks/train_step.py --device cuda \
        --no-first-step --no-torch --rounds 2 --steps 20 --batch-size "$batch" \
        --json "$OUT/train_step_cuda_b${batch}_wgrad_auto.json"
done
run_part "cuda_graph benchmark, wgrad auto" "$GRAPH_BENCH_TIMEOUT" \
    "$OUT/cuda_graph_wgrad_auto.log" \
    env MINIGRAD_CUDA_WGRAD=auto "$PYTHON" benchmarks/cuda_graph.py --batch-sizes 32 256 \
    --steps 20 --warmup 3 --capture-gemms cublas --no-torch --no-gemms \
    --json "$OUT/cuda_graph_wgrad_auto.json"
# The step times and peak memory of parts 4-6 side by side, and what "auto" measured.
timeout 20 "$PYTHON" - "$OUT" >> "$SUMMARY" 2>&1 <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for name in ("train_step_cuda_b32", "train_step_cuda_b32_wgrad_auto", "train_step_cuda_b256",
             "train_step_cuda_b256_wgrad_auto", "train_step_cuda_b256_tf32"):
    try:
        result = json.loads((out / f"{name}.json").read_text())
        ours = result["minigrad"]["fast"]["train_step_ms"]
    except Exception as exc:
        print(f"{name}: no result ({type(exc).__name__}: {exc})")
        continue
    torch = result.get("torch", {})
    print(f"{name}: minigrad {ours} ms/step"
          + (f", PyTorch {torch['train_step_ms']} ms" if "train_step_ms" in torch else ""))
    memory = [(who, part.get("gpu_memory")) for who, part in
              (("minigrad", result["minigrad"]["fast"]), ("PyTorch", torch))]
    if any(m for _, m in memory):
        print("    peak GPU memory (MiB allocated / reserved): " + ", ".join(
            f"{who} {m['peak_allocated_mib']} / {m['reserved_mib']}" for who, m in memory if m))
    for entry in result.get("weight_grad", {}).get("tuning", []):
        print(f"    wgrad O={entry['out_channels']} rows={entry['rows']} "
              f"plane={entry['plane']}: ms by split count {entry['ms']}, chose {entry['splits']}")
for name in ("cuda_graph", "cuda_graph_wgrad_auto"):
    try:
        batches = json.loads((out / f"{name}.json").read_text())["batches"]
    except Exception as exc:
        print(f"{name}: no result ({type(exc).__name__}: {exc})")
        continue
    for batch, entry in batches.items():
        ours = entry.get("minigrad", {})
        print(f"{name} b{batch}: eager {ours.get('eager_ms')} ms, graphed(cuBLAS) "
              f"{ours.get('graphed_cublas_ms')} ms")
EOF

echo "== total: $((SECONDS - START))s of the ${BUDGET}s budget; failed=$failed" >> "$SUMMARY"
echo
echo "################ summary"
cat "$SUMMARY"
exit "$failed"
