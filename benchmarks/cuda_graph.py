"""Time the exercise CNN's training step replayed as a CUDA graph, beside the eager step.

    python benchmarks/cuda_graph.py [--batch-sizes 32 256] [--steps 50] [--warmup 5]
                                    [--capture-gemms custom cublas] [--no-torch]
                                    [--no-gemms] [--json PATH]

Needs CuPy and a GPU. Prints one JSON object: for each batch size, median milliseconds
per training step (forward, loss, backward, Adam; synchronised after every step) of
minigrad eager and minigrad graphed (``minigrad.cuda.graphed_step``) once per GEMM
the graph can capture - ``graphed_custom_ms`` (our tiled GEMM) and
``graphed_cublas_ms`` (cuBLAS called past CuPy's guard) side by side - and, where
PyTorch with CUDA imports, PyTorch eager and PyTorch graphed (whole-step capture with
``capturable`` Adam, TF32 off), all in this process on this card, with the ratios
(minigrad / PyTorch: below 1 is faster); also the steps per second when nothing waits
between steps, each graph's private memory, the loss after the timed steps (the
same steps from the same weights, so the two graphs should end close), and the peak
GPU memory. Then each GEMM of the exercise's layers: cuBLAS through CuPy
(``cupy.matmul``), cuBLAS called directly as the graph does, and the tiled GEMM
(``kernels/cuda/gemm.cu``), at batch 32 and 256; for the convolutions' weight
gradients (one GEMM with K = N*OH*OW) also the per-image alternative (strided-batched
GEMMs, then a sum over the batch), to tell whether the long-K GEMM is the slow one.
``--no-gemms`` skips these GEMM timings (they do not depend on the step's settings).

A part that fails is reported as ``{"error": ...}`` and the rest still runs; with
``--json`` the file is rewritten after every part, so a run cut short by a time limit
still leaves what it measured.
"""
import argparse
import functools
import json
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # _common, also when this file is loaded by its path
    sys.path.insert(0, str(HERE))

import _common  # noqa: E402  (after the path set-up)
import numpy as np  # noqa: E402
from _common import (CLASSES, IMAGE_SIZE, make_batch, time_calls,  # noqa: E402
                     torch_exercise_cnn, weight_grad_report)

# GPU steps take a few milliseconds: one digit more than the CPU benchmark keeps.
median_ms = functools.partial(_common.median_ms, digits=4)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--capture-gemms", nargs="+", default=["custom", "cublas"],
                        choices=["custom", "cublas"], help="GEMMs to capture the graph with")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--no-gemms", action="store_true",
                        help="skip the per-GEMM timings at batch 32 and 256")
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or min(args.batch_sizes) < 1:
        parser.error("--steps, --warmup and the batch sizes must be positive")
    return args


def error_entry(exc):
    """A failed part's JSON: the exception and where it came from."""
    return {"error": f"{type(exc).__name__}: {exc}",
            "where": traceback.format_exc(limit=-3).strip().splitlines()[-6:]}


def write_json(path, result):
    """Write the JSON atomically (write, then rename): never a half-written file."""
    if path is None:
        return
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(partial, path)


# ---------------------------------------------------------------------- minigrad
def minigrad_model(mg):
    from minigrad.models import exercise_cnn
    mg.manual_seed(0)
    return exercise_cnn(CLASSES, "relu", IMAGE_SIZE).to("cuda")


def time_minigrad(batch_size, args):
    import cupy as cp

    import minigrad as mg
    images, labels = make_batch(batch_size)
    x, y = mg.tensor(images, device="cuda"), mg.tensor(labels, device="cuda")
    loss_fn = mg.losses.get("cross_entropy")
    sync = cp.cuda.get_current_stream().synchronize
    result = {}
    try:
        model = minigrad_model(mg)
        opt = mg.optim.get("adam", model.parameters(), lr=1e-3)

        def eager():
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss
        for _ in range(args.warmup + 1):  # as many as a graphed step's first call + warm-up
            eager()
        times, back_to_back = time_calls(eager, sync, args.steps)
        result["eager_ms"] = median_ms(times)
        result["eager_back_to_back_ms"] = round(1e3 * back_to_back, 4)
        result["eager_final_loss"] = float(eager().item())
    except Exception as exc:
        result["eager"] = error_entry(exc)
    result["graphed"] = {}
    for gemm_name in args.capture_gemms:
        try:
            entry = time_graphed(mg, loss_fn, x, y, sync, args, gemm_name)
            result[f"graphed_{gemm_name}_ms"] = entry["graphed_ms"]
        except Exception as exc:
            entry = error_entry(exc)
        result["graphed"][gemm_name] = entry
    if "graphed_custom_ms" in result and "graphed_cublas_ms" in result:
        result["cublas_speedup_over_custom"] = round(
            result["graphed_custom_ms"] / result["graphed_cublas_ms"], 3)
    pool = cp.get_default_memory_pool()
    result["cupy_pool_total_mib"] = round(pool.total_bytes() / 2 ** 20, 1)
    return result


def time_graphed(mg, loss_fn, x, y, sync, args, gemm_name):
    """One graphed model, captured with ``gemm_name``: timings, memory, and the loss
    after as many steps from the same weights as the eager model took."""
    import minigrad.cuda as mg_cuda
    model = minigrad_model(mg)
    opt = mg.optim.get("adam", model.parameters(), lr=1e-3)
    step = mg_cuda.graphed_step(model, loss_fn, opt, x, y, gemm=gemm_name)
    result = {"gemm": step.gemm}
    start = time.perf_counter()
    step(x, y)  # the eager warm-up and the capture
    sync()
    result["warm_up_and_capture_ms"] = round(1e3 * (time.perf_counter() - start), 2)
    for _ in range(args.warmup):
        step(x, y)
    times, back_to_back = time_calls(lambda: step(x, y), sync, args.steps)
    result["graphed_ms"] = median_ms(times)
    result["graphed_back_to_back_ms"] = round(1e3 * back_to_back, 4)
    result["graph_memory_mib"] = round(step.graph_memory_bytes / 2 ** 20, 1)
    result["final_loss"] = float(step(x, y).item())
    result["finite"] = step.check_finite()
    result["captures"], result["replays"] = step.captures, step.replays
    return result


# ---------------------------------------------------------------------- PyTorch
def time_torch(batch_size, args):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    nn, functional = torch.nn, torch.nn.functional
    images, labels = make_batch(batch_size)
    x, y = torch.from_numpy(images).cuda(), torch.from_numpy(labels).cuda()

    def build():
        torch.manual_seed(0)
        return torch_exercise_cnn(nn).cuda()
    sync = torch.cuda.synchronize
    result = {"version": torch.__version__}
    torch.cuda.reset_peak_memory_stats()

    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def eager():
        opt.zero_grad(set_to_none=True)
        functional.cross_entropy(model(x), y).backward()
        opt.step()
    for _ in range(args.warmup):
        eager()
    times, back_to_back = time_calls(eager, sync, args.steps)
    result["eager_ms"] = median_ms(times)
    result["eager_back_to_back_ms"] = round(1e3 * back_to_back, 4)

    # Whole-step capture as in PyTorch's CUDA-graph documentation.
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
    static_x, static_y = x.clone(), y.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            functional.cross_entropy(model(static_x), static_y).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = functional.cross_entropy(model(static_x), static_y)
        static_loss.backward()
        opt.step()

    def graphed():
        static_x.copy_(x)
        static_y.copy_(y)
        graph.replay()
    for _ in range(args.warmup):
        graphed()
    times, back_to_back = time_calls(graphed, sync, args.steps)
    result["graphed_ms"] = median_ms(times)
    result["graphed_back_to_back_ms"] = round(1e3 * back_to_back, 4)
    result["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return result


def torch_cuda_available():
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:
        return False


# ---------------------------------------------------------------------- GEMMs
def exercise_gemms(batch_size):
    """(name, m, n, k, trans_a, trans_b) of every GEMM of one training step."""
    shapes = []
    size, channels = IMAGE_SIZE, 3
    for i, out in enumerate((32, 64, 128), 1):
        k, columns = channels * 9, batch_size * size * size
        shapes += [(f"conv{i} forward", out, columns, k, False, False),
                   (f"conv{i} weight grad", out, k, columns, False, True)]
        if i > 1:
            shapes.append((f"conv{i} input grad", k, columns, out, True, False))
        size, channels = size // 2, out
    features = channels * size * size
    shapes += [("dense1 forward", batch_size, 128, features, False, True),
               ("dense1 weight grad", 128, features, batch_size, True, False),
               ("dense1 input grad", batch_size, features, 128, False, False)]
    return shapes


def gpu_ms(call, reps):
    """Milliseconds per call of ``call()``, by CUDA events around ``reps`` calls after
    one untimed call."""
    import cupy as cp
    call()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(reps):
        call()
    end.record()
    end.synchronize()
    return round(cp.cuda.get_elapsed_time(start, end) / reps, 4)


def time_gemms(batch_size, reps=20):
    import cupy as cp

    from kernels.cuda import cublas_capture, gemm
    gen = np.random.default_rng(0)
    gemm.load(np.float32)
    cublas_capture.prepare()
    products = (("cublas_ms", cp.matmul), ("cublas_direct_ms", gemm.matmul_cublas),
                ("graph_safe_ms", gemm.matmul_graph_safe))
    rows = []
    for name, m, n, k, trans_a, trans_b in exercise_gemms(batch_size):
        a = cp.asarray(gen.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32))
        b = cp.asarray(gen.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32))
        a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
        row = {"gemm": name, "m": m, "n": n, "k": k,
               "split_k": gemm.split_k_for(m, n, k, 1, gemm.sm_count())}
        for label, fn in products:
            try:
                row[label] = gpu_ms(lambda: fn(a_op, b_op), reps)
            except Exception as exc:
                row[label] = None
                row.setdefault("errors", {})[label] = f"{type(exc).__name__}: {exc}"
        if name.startswith("conv") and name.endswith("weight grad"):
            # The alternative layout for the long-K weight gradient: one GEMM per image
            # (cuBLAS strided-batched), then a sum over the batch.
            plane = k // batch_size
            a3 = cp.asarray(gen.standard_normal((batch_size, m, plane)).astype(np.float32))
            b3 = cp.asarray(gen.standard_normal((batch_size, n, plane)).astype(np.float32))
            row["per_image_batched_then_sum_ms"] = gpu_ms(
                lambda: cp.matmul(a3, b3.transpose(0, 2, 1)).sum(axis=0), reps)
        if row["graph_safe_ms"] and row["cublas_ms"]:
            row["tflops_graph_safe"] = round(2 * m * n * k / (row["graph_safe_ms"] * 1e9), 2)
            row["ratio"] = round(row["graph_safe_ms"] / row["cublas_ms"], 2)
        if row["cublas_direct_ms"] and row["cublas_ms"]:
            row["ratio_direct"] = round(row["cublas_direct_ms"] / row["cublas_ms"], 2)
        rows.append(row)
    return rows


def graph_memory_node_bytes():
    """The high-water mark of memory that captured graphs allocate as memory nodes
    (memory outside CuPy's pool: 0 when every graph's memory came from the pool);
    None where CuPy does not expose the attribute."""
    import cupy as cp
    get = getattr(cp.cuda.runtime, "deviceGetGraphMemAttribute", None)
    if get is None:
        return None
    try:
        return int(get(cp.cuda.Device().id, 1))  # cudaGraphMemAttrUsedMemHigh
    except Exception:
        return None


def run(args):
    import cupy as cp
    device = cp.cuda.Device()
    result = {"benchmark": "exercise CNN training step, eager vs CUDA graph",
              "gpu": cp.cuda.runtime.getDeviceProperties(device.id)["name"].decode(),
              "cupy": cp.__version__, "steps": args.steps, "warmup": args.warmup,
              "capture_gemms": args.capture_gemms, "batches": {}}
    if "cublas" in args.capture_gemms:
        try:
            from kernels.cuda import cublas_capture
            result["cublas_capture"] = cublas_capture.describe()
        except Exception as exc:
            result["cublas_capture"] = error_entry(exc)
    with_torch = not args.no_torch and torch_cuda_available()
    for batch_size in args.batch_sizes:
        entry = {"minigrad": time_minigrad(batch_size, args)}
        result["batches"][str(batch_size)] = entry
        write_json(args.json, result)
        if with_torch:
            try:
                entry["torch"] = time_torch(batch_size, args)
            except Exception as exc:
                entry["torch"] = error_entry(exc)
            ours, theirs = entry["minigrad"], entry["torch"]
            pairs = [("eager", "eager_ms", "eager_ms")]
            pairs += [(f"graphed_{g}", f"graphed_{g}_ms", "graphed_ms")
                      for g in args.capture_gemms]
            for label, mine, torch_key in pairs:
                if mine in ours and torch_key in theirs:
                    entry[f"ratio_{label}"] = round(ours[mine] / theirs[torch_key], 3)
        print(f"batch {batch_size}: {json.dumps(entry)}", file=sys.stderr)
        write_json(args.json, result)
    result["graph_memory_node_high_bytes"] = graph_memory_node_bytes()
    result["weight_grad"] = weight_grad_report()
    gemm_batch_sizes = [] if args.no_gemms else [32, 256]
    for batch_size in gemm_batch_sizes:
        try:
            result[f"gemms_batch_{batch_size}"] = time_gemms(batch_size)
        except Exception as exc:
            result[f"gemms_batch_{batch_size}"] = error_entry(exc)
        write_json(args.json, result)
    return result


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    print(json.dumps(result, indent=2))
    failed = any("error" in part for entry in result["batches"].values()
                 for part in [entry["minigrad"].get("eager", {})]
                 + list(entry["minigrad"]["graphed"].values()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
