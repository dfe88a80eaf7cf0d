"""The graph-safe GEMMs and whole-step CUDA graphs (minigrad.cuda) on a real GPU.

Marked ``gpu``: skipped where CuPy or a GPU is missing. What runs without a GPU is in
tests/test_capture_mode.py (the flag and the ops that read it) and
tests/kernels/test_gemm_cuda_emulated.py (the same CUDA C on the CPU emulator, and the cuBLAS
capture path against a stand-in libcublas).

The graphed-step tests run with both GEMMs a capture can use: ``"custom"`` (gemm.cu)
and ``"cublas"`` (cuBLAS called past CuPy's guard, kernels/cuda/cublas_capture.py).
Failures print every parameter's difference, so one GPU run tells what went wrong.
"""
import gc

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.optim import lr_scheduler
from minigrad.models import exercise_cnn

pytestmark = pytest.mark.gpu

if not mg.cuda_available():
    pytest.skip("needs CuPy and a CUDA GPU", allow_module_level=True)

import cupy as cp  # noqa: E402  (after the skip)

import minigrad.cuda as mg_cuda  # noqa: E402
from kernels.cuda import cublas_capture, gemm  # noqa: E402

TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]
CAPTURE_GEMMS = ["custom", "cublas"]

# Every GEMM of the exercise CNN's training step at batch 32: (m, n, k, trans_a, trans_b).
EXERCISE_GEMMS = [
    (32, 102400, 27, False, False),   # conv1 forward: W @ cols
    (32, 27, 102400, False, True),    # conv1 weight gradient: gy @ cols.T
    (64, 51200, 288, False, False),   # conv2 forward
    (64, 288, 51200, False, True),    # conv2 weight gradient
    (288, 51200, 64, True, False),    # conv2 input gradient: W.T @ gy
    (128, 12800, 576, False, False),  # conv3 forward
    (576, 12800, 128, True, False),   # conv3 input gradient
    (32, 128, 12800, False, True),    # dense forward: x @ W.T
    (128, 12800, 32, True, False),    # its weight gradient: g.T @ x
    (32, 12800, 128, False, False),   # its input gradient: g @ W
]


def _normal(gen, shape, dtype=np.float32):
    return cp.asarray(gen.standard_normal(shape).astype(dtype))


def _close_to_cublas(got, a, b, dtype, what=""):
    """Against cupy.matmul, relative to the scale of |a| @ |b| (summation orders differ)."""
    want = cp.matmul(a, b)
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{what}: got {got.shape} {got.dtype}, cupy.matmul gives {want.shape} {want.dtype}")
    if got.size == 0:
        return
    scale = cp.matmul(cp.abs(a), cp.abs(b))
    k = a.shape[-1]
    eps = np.finfo(dtype).eps
    error = cp.abs(got - want)
    excess = error - (2 * k + 4) * eps * scale
    worst = int(cp.argmax(excess))
    assert float(excess.max()) <= 0, (
        f"{what}: {int((excess > 0).sum())} of {got.size} entries beyond (2k+4) ulps of "
        f"|a|@|b|; worst at flat index {worst}: got {float(got.ravel()[worst])!r}, "
        f"cupy.matmul {float(want.ravel()[worst])!r}, error {float(error.ravel()[worst]):.3g}")


def _difference(got, want):
    """'max |d| = ..., n differ' for two arrays (for failure messages)."""
    got, want = cp.asnumpy(got), cp.asnumpy(want)
    if got.shape != want.shape:
        return f"shapes {got.shape} and {want.shape}"
    d = np.abs(got.astype(np.float64) - want.astype(np.float64))
    return (f"max |d| = {d.max() if d.size else 0:.3g}, {int((d > 0).sum())} of {d.size} "
            "entries differ")


# ------------------------------------------------------------------ the GEMM
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("split_k", [None, 1, 5])
def test_gemm_against_cupy_matmul_on_odd_shapes(dtype, trans_a, trans_b, split_k):
    gen = np.random.default_rng(1)
    for m, n, k in [(1, 1, 1), (65, 63, 17), (3, 130, 333), (130, 70, 1000), (7, 5, 0)]:
        a = _normal(gen, (k, m) if trans_a else (m, k), dtype)
        b = _normal(gen, (n, k) if trans_b else (k, n), dtype)
        got = gemm.gemm(a, b, trans_a=trans_a, trans_b=trans_b, split_k=split_k)
        _close_to_cublas(got, a.T if trans_a else a, b.T if trans_b else b, dtype)


@pytest.mark.parametrize("m,n,k,trans_a,trans_b", [
    (32, 128, 12800, False, True),    # dense forward: x @ W.T
    (128, 12800, 32, True, False),    # its weight gradient: g.T @ x
    (32, 12800, 128, False, False),   # its input gradient: g @ W
    (64, 51200, 288, False, False),   # conv2 forward: W @ cols
    (64, 288, 51200, False, True),    # conv2 weight gradient: gy @ cols.T
    (288, 51200, 64, True, False),    # conv2 input gradient: W.T @ gy
], ids=lambda v: str(v))
def test_gemm_on_the_exercise_shapes(m, n, k, trans_a, trans_b):
    gen = np.random.default_rng(2)
    a = _normal(gen, (k, m) if trans_a else (m, k))
    b = _normal(gen, (n, k) if trans_b else (k, n))
    a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
    got = gemm.matmul_graph_safe(a_op, b_op)
    _close_to_cublas(got, a_op, b_op, np.float32)
    np.testing.assert_array_equal(cp.asnumpy(gemm.matmul_graph_safe(a_op, b_op)),
                                  cp.asnumpy(got))  # no atomics: repeatable bits


def test_matmul_dispatch_and_the_gemm_inside_a_captured_graph(monkeypatch):
    gen = np.random.default_rng(3)
    a, b = _normal(gen, (32, 12800)), _normal(gen, (128, 12800))
    gemm.load(np.float32)
    assert not gemm.stream_is_capturing()
    eager = gemm.matmul(a, b.T)  # cuBLAS
    stream = cp.cuda.Stream(non_blocking=True)
    outputs = []
    tiled = []
    real_tiled = gemm._gemm

    def counting(*args, **kwargs):
        tiled.append(1)
        return real_tiled(*args, **kwargs)
    monkeypatch.setattr(gemm, "_gemm", counting)
    with stream, gemm.capture_gemm("custom"):
        stream.begin_capture()
        assert gemm.stream_is_capturing()
        outputs.append(gemm.matmul(a, b.T))  # must not raise: the tiled GEMM
        graph = stream.end_capture()
    assert tiled == [1], "the capture did not multiply with the tiled GEMM"
    a[...] = _normal(gen, a.shape)  # the graph reads the new values on replay
    graph.launch()  # on the current (default) stream: after the copy above
    cp.cuda.get_current_stream().synchronize()
    _close_to_cublas(outputs[0], a, b.T, np.float32)
    assert not cp.allclose(outputs[0], eager)


# ------------------------------------------------------------------ cuBLAS past the guard
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
def test_cublas_direct_against_cupy_matmul_on_odd_shapes(dtype, trans_a, trans_b):
    gen = np.random.default_rng(5)
    for m, n, k in [(1, 1, 1), (65, 63, 17), (3, 130, 333), (130, 70, 1000), (7, 5, 0),
                    (0, 4, 3)]:
        a = _normal(gen, (k, m) if trans_a else (m, k), dtype)
        b = _normal(gen, (n, k) if trans_b else (k, n), dtype)
        a_op, b_op = (a.T if trans_a else a), (b.T if trans_b else b)
        _close_to_cublas(gemm.matmul_cublas(a_op, b_op), a_op, b_op, dtype,
                         what=f"{m}x{k} @ {k}x{n}, trans {trans_a, trans_b}")


def test_cublas_direct_batched_broadcast_one_dimensional_and_strided():
    gen = np.random.default_rng(6)
    cases = [((3, 5, 4), (3, 4, 6)), ((2, 1, 5, 4), (3, 4, 6)), ((5, 4), (2, 4, 6)),
             ((2, 5, 4), (4, 6)), ((4,), (2, 4, 6)), ((3, 5, 4), (4,)), ((4,), (4,))]
    for shape_a, shape_b in cases:
        a, b = _normal(gen, shape_a, np.float64), _normal(gen, shape_b, np.float64)
        got, want = gemm.matmul_cublas(a, b), cp.matmul(a, b)
        assert got.shape == want.shape, (shape_a, shape_b)
        np.testing.assert_allclose(cp.asnumpy(got), cp.asnumpy(want), rtol=1e-12, atol=1e-12,
                                   err_msg=f"{shape_a} @ {shape_b}")
    big = _normal(gen, (40, 30), np.float32)
    for a, b in [(big[3:20, 2:9], big[5:12, 1:25]), (big[3:20, 2:9].T, big[:17, 4:8]),
                 (big[::-1, :7][:13], big[:7, ::2])]:
        _close_to_cublas(gemm.matmul_cublas(a, b), a, b, np.float32,
                         what=f"views {a.shape} {a.strides} @ {b.shape} {b.strides}")


def test_cublas_gemms_captured_in_a_graph_replay_with_new_inputs(monkeypatch):
    """The exercise's GEMMs captured through cuBLAS: every product goes to cuBLAS, the
    replay gives the eager call's bits (same handle, same call), then follows new
    inputs, and replays allocate nothing."""
    gen = np.random.default_rng(7)
    operands = []
    for m, n, k, trans_a, trans_b in EXERCISE_GEMMS:
        a = _normal(gen, (k, m) if trans_a else (m, k))
        b = _normal(gen, (n, k) if trans_b else (k, n))
        operands.append((a, b, a.T if trans_a else a, b.T if trans_b else b))
    cublas_capture.prepare()
    eager = [gemm.matmul_cublas(a_op, b_op) for _, _, a_op, b_op in operands]
    calls = []
    real_gemm = cublas_capture.gemm

    def counting(*args, **kwargs):
        calls.append(kwargs["capturing"])
        return real_gemm(*args, **kwargs)
    monkeypatch.setattr(cublas_capture, "gemm", counting)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream, gemm.capture_gemm("cublas"):
        stream.begin_capture()
        try:
            captured = [gemm.matmul(a_op, b_op) for _, _, a_op, b_op in operands]
        except BaseException:
            mg_cuda._end_capture_quietly(stream)
            raise
        graph = stream.end_capture()
    assert calls == [True] * len(EXERCISE_GEMMS), calls  # all through cuBLAS, captured
    graph.launch()
    cp.cuda.get_current_stream().synchronize()
    for shape, out, want in zip(EXERCISE_GEMMS, captured, eager):
        assert bool((out == want).all()), (
            f"{shape}: the replayed cuBLAS GEMM differs from the same call made eagerly: "
            f"{_difference(out, want)}")
    pool = cp.get_default_memory_pool()
    used = pool.used_bytes()
    for a, b, _, _ in operands:
        a[...] = _normal(gen, a.shape)
        b[...] = _normal(gen, b.shape)
    for _ in range(3):
        graph.launch()
    cp.cuda.get_current_stream().synchronize()
    for shape, out, (_, _, a_op, b_op) in zip(EXERCISE_GEMMS, captured, operands):
        _close_to_cublas(out, a_op, b_op, np.float32, what=f"after new inputs, {shape}")
    assert pool.used_bytes() <= used


def test_the_cublas_workspace_is_made_once_per_device():
    cublas_capture.prepare()
    state = cublas_capture._handles[cp.cuda.Device().id]
    cublas_capture.prepare()
    assert cublas_capture._handles[cp.cuda.Device().id] is state
    info = cublas_capture.describe()
    assert info["workspace_bytes"] == cublas_capture.WORKSPACE_BYTES
    assert "cublas" in info["library"] and info["version"] >= 11000, info


# ------------------------------------------------------------------ graphed steps
def _twin_models(build, seed=0, dtype=np.float32):
    """Two identical models on the GPU (same seed, same weights)."""
    mg.manual_seed(seed)
    first = build()
    second = build()
    second.load_state_dict(first.state_dict())
    if dtype != np.float32:
        first.astype(dtype)
        second.astype(dtype)
    return first.to("cuda"), second.to("cuda")


def _batches(sizes, shape, classes, seed=0, dtype=np.float32):
    gen = np.random.default_rng(seed)
    return [(mg.tensor(gen.standard_normal((n,) + shape).astype(dtype), device="cuda"),
             mg.tensor(gen.integers(0, classes, n), device="cuda")) for n in sizes]


def _eager_step(model, loss_fn, opt, x, y):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


@pytest.fixture(params=CAPTURE_GEMMS)
def same_gemm(request):
    """The GEMM the graph captures (the test's parameter), which the eager steps use
    too, so that both do the same arithmetic.

    Between two GEMMs, rounding differs by an ulp, and that is enough to move a 2x2
    max-pool's choice between two near-equal values, routing a whole gradient
    elsewhere: a real, but uninformative, difference. With the same GEMM, the
    graphed and the eager steps must agree to the last few ulps.
    """
    with gemm.capture_gemm(request.param, eager=True):
        yield request.param


def _parameter_report(a, b, rtol, atol):
    """One line per parameter: max differences and how many entries are out of tolerance."""
    lines, bad = [], 0
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        pa64, pb64 = np.asarray(pa, np.float64), np.asarray(pb, np.float64)
        d = np.abs(pb64 - pa64)
        off = int((d > atol + rtol * np.abs(pa64)).sum())
        bad += off
        lines.append(f"  {name:>10} {str(pa.shape):>18}: max |d| {d.max():.3g}, max |d|/|a| "
                     f"{(d / np.maximum(np.abs(pa64), 1e-30)).max():.3g}, "
                     f"{off} of {d.size} out of tolerance")
    return bad, "\n".join(lines)


def _assert_same_parameters(a, b, rtol=1e-6, atol=1e-8):
    bad, report = _parameter_report(a, b, rtol, atol)
    assert bad == 0, f"parameters differ (rtol={rtol}, atol={atol}):\n{report}"


def _small_cnn(dropout=0.0):
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
              nn.Dense(16 * 4 * 4, 32), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Dense(32, 5))


@pytest.mark.parametrize("name,kwargs", [
    ("adam", {"lr": 1e-3}),
    ("adamw", {"lr": 1e-3, "weight_decay": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"lr": 1e-3, "momentum": 0.5, "centered": True}),
    ("adagrad", {"lr": 1e-2, "lr_decay": 1e-3}),
])
def test_graphed_steps_match_eager_steps(same_gemm, name, kwargs):
    eager, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get(name, eager.parameters(), **kwargs)
    opt_g = optim.get(name, graphed.parameters(), **kwargs)
    batches = _batches([8] * 6, (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0], gemm=same_gemm)
    assert step.gemm == same_gemm
    for i, (x, y) in enumerate(batches):
        want = _eager_step(eager, loss_fn, opt_e, x, y)
        got = step(x, y)
        assert got.device == "cuda" and got.shape == ()
        assert float(got.item()) == pytest.approx(float(want.item()), rel=1e-6, abs=1e-8), (
            f"step {i}: graphed loss {float(got.item())!r}, eager {float(want.item())!r}")
    assert (step.captures, step.replays, step.eager_steps) == (1, 5, 1)
    _assert_same_parameters(eager, graphed)
    # The host mirrors of the device step counts: state_dict() tells the truth.
    if "step" in opt_e.state_dict()["state"][0]:
        assert opt_g.state_dict()["state"][0]["step"] == opt_e.state_dict()["state"][0]["step"]
    # p.grad holds the latest step's gradients, written in place by the replay.
    for (pname, pe), pg in zip(eager.named_parameters(), graphed.parameters()):
        np.testing.assert_allclose(cp.asnumpy(pg.grad), cp.asnumpy(pe.grad),
                                   rtol=1e-5, atol=1e-8, err_msg=f"gradient of {pname}")


@pytest.mark.parametrize("capture_gemm", CAPTURE_GEMMS)
def test_the_exercise_cnn_graphed_in_float64_matches_eager_closely(capture_gemm):
    """Against plain eager steps (cupy.matmul): float64 keeps the max-pool choices apart."""
    eager, graphed = _twin_models(lambda: exercise_cnn(4), dtype=np.float64)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("adam", eager.parameters(), lr=1e-3)
    opt_g = optim.get("adam", graphed.parameters(), lr=1e-3)
    batches = _batches([4] * 4, (3, 80, 80), 4, dtype=np.float64)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0], gemm=capture_gemm)
    for x, y in batches:
        _eager_step(eager, loss_fn, opt_e, x, y)
        step(x, y)
    assert step.replays == 3
    _assert_same_parameters(eager, graphed, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("mode", ["split", "auto"])
@pytest.mark.parametrize("capture_gemm", CAPTURE_GEMMS)
def test_weight_gradient_modes_match_one_gemm(monkeypatch, mode, capture_gemm):
    """MINIGRAD_CUDA_WGRAD=split/auto in a graphed float64 exercise CNN against eager
    steps with one weight-gradient GEMM; "auto" has timed every convolution's shape in
    the warm-up step, with the capture's GEMM, before the capture."""
    from kernels.cuda import conv
    monkeypatch.setattr(conv, "_tuned", {})
    eager, graphed = _twin_models(lambda: exercise_cnn(4), dtype=np.float64)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("adam", eager.parameters(), lr=1e-3)
    opt_g = optim.get("adam", graphed.parameters(), lr=1e-3)
    batches = _batches([6] * 4, (3, 80, 80), 4, dtype=np.float64)
    monkeypatch.setenv(conv.WGRAD_VARIABLE, mode)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0], gemm=capture_gemm)
    for x, y in batches:
        monkeypatch.setenv(conv.WGRAD_VARIABLE, "single")
        _eager_step(eager, loss_fn, opt_e, x, y)
        monkeypatch.setenv(conv.WGRAD_VARIABLE, mode)
        step(x, y)
    assert step.replays == 3
    _assert_same_parameters(eager, graphed, rtol=1e-9, atol=1e-11)
    if mode == "auto":
        tuned = conv.weight_grad_tuning()
        assert sorted(e["out_channels"] for e in tuned) == [32, 64, 128], tuned
        assert all(e["gemm"] == capture_gemm and e["batch"] == 6 for e in tuned), tuned
        for e in tuned:
            heuristic = conv.split_weight_grad_slices(6, e["out_channels"], e["rows"],
                                                      e["plane"])
            assert set(e["ms"]) == {1, heuristic, 6}, e
            assert e["ms"][e["splits"]] == min(e["ms"].values()), e


@pytest.mark.parametrize("name,kwargs", [
    ("adam", {"lr": 1e-3}),
    ("adamw", {"lr": 1e-3, "weight_decay": 0.05}),
    ("sgd", {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"lr": 1e-4, "momentum": 0.5}),
    ("adagrad", {"lr": 1e-2, "lr_decay": 1e-3}),
])
def test_cublas_graphed_exercise_cnn_in_float32_matches_plain_eager_steps(name, kwargs):
    """cuBLAS in the graph against cupy.matmul's cuBLAS in the eager steps, float32.

    Both are cuBLAS, but not necessarily the same call (CuPy may lay the operands out
    differently), so they agree to float32 rounding, not bit for bit. A rounding
    difference can flip a near-tie of a max-pool or the sign of a near-zero gradient
    (which Adam-like updates turn into a whole step), and then a few weights differ by
    up to a few learning rates (tests/test_gpu.py allows the same against the CPU).
    A wrong product would differ everywhere, from the first loss on.
    """
    eager, graphed = _twin_models(lambda: exercise_cnn(4))
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get(name, eager.parameters(), **kwargs)
    opt_g = optim.get(name, graphed.parameters(), **kwargs)
    batches = _batches([8] * 5, (3, 80, 80), 4)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0], gemm="cublas")
    for i, (x, y) in enumerate(batches):
        want = float(_eager_step(eager, loss_fn, opt_e, x, y).item())
        got = float(step(x, y).item())
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5), (
            f"step {i}: graphed (cuBLAS) loss {got!r}, eager (cupy.matmul) {want!r}")
    assert (step.captures, step.replays) == (1, 4)
    lr = kwargs["lr"]
    bad, report = _parameter_report(eager, graphed, rtol=1e-3, atol=1e-5)
    total = sum(p.data.size for p in eager.parameters())
    worst = max(float(np.abs(pe.numpy() - pg.numpy()).max())
                for pe, pg in zip(eager.parameters(), graphed.parameters()))
    assert bad <= max(10, total // 1000) and worst <= 5 * lr, (
        f"{bad} of {total} weights differ, worst by {worst:.3g} (lr {lr}):\n{report}")


def test_dropout_masks_advance_between_replays_as_in_eager_steps(same_gemm):
    eager, graphed = _twin_models(lambda: _small_cnn(dropout=0.5))
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("sgd", eager.parameters(), lr=0.1)
    opt_g = optim.get("sgd", graphed.parameters(), lr=0.1)
    batches = _batches([8, 8, 8, 3, 8, 8], (3, 16, 16), 5)
    mg.manual_seed(11)
    for x, y in batches:
        _eager_step(eager, loss_fn, opt_e, x, y)
    eager_offset = mg.random.take_offsets(0)[1]
    mg.manual_seed(11)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0], gemm=same_gemm)
    for x, y in batches:
        step(x, y)
    assert step.replays == 4 and step.eager_steps == 2
    assert mg.random.take_offsets(0)[1] == eager_offset  # the host stream kept pace
    _assert_same_parameters(eager, graphed)


def test_schedulers_change_the_learning_rate_between_replays(same_gemm):
    eager, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("sgd", eager.parameters(), lr=0.1, momentum=0.9)
    opt_g = optim.get("sgd", graphed.parameters(), lr=0.1, momentum=0.9)
    sched_e = lr_scheduler.StepLR(opt_e, step_size=2, gamma=0.3)
    sched_g = lr_scheduler.StepLR(opt_g, step_size=2, gamma=0.3)
    batches = _batches([8] * 7, (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0], gemm=same_gemm)
    for x, y in batches:
        _eager_step(eager, loss_fn, opt_e, x, y)
        sched_e.step()
        step(x, y)
        sched_g.step()
    assert step.captures == 1  # the lr is read on the device: no recapture
    _assert_same_parameters(eager, graphed)
    # lr = 0 stops the updates (no momentum left to carry on with).
    opt_g.param_groups[0]["lr"] = 0.0
    opt_g.param_groups[0]["momentum"] = 0.0  # a frozen hyper-parameter: recaptures
    step(*batches[0])
    before = [p.numpy().copy() for p in graphed.parameters()]
    step(*batches[1])
    step(*batches[2])
    assert step.captures == 2
    for p, b in zip(graphed.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)


def test_the_last_smaller_batch_falls_back_to_an_eager_step(same_gemm):
    eager, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("adam", eager.parameters(), lr=1e-3)
    opt_g = optim.get("adam", graphed.parameters(), lr=1e-3)
    batches = _batches([8, 8, 8, 5, 8, 8, 5], (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0], gemm=same_gemm)
    for x, y in batches:
        _eager_step(eager, loss_fn, opt_e, x, y)
        loss = step(x, y)
        assert step.output.shape == (x.shape[0], 5)
        assert loss.shape == ()
    assert (step.replays, step.eager_steps) == (4, 3)
    _assert_same_parameters(eager, graphed)
    assert opt_g.state_dict()["state"][0]["step"] == 7


@pytest.mark.parametrize("capture_gemm", CAPTURE_GEMMS)
def test_nonfinite_losses_are_flagged_on_the_device(capture_gemm):
    _, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt = optim.get("adam", graphed.parameters(), lr=1e-3)
    batches = _batches([8] * 4, (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt, *batches[0], gemm=capture_gemm)
    for x, y in batches:
        step(x, y)
    assert step.check_finite()
    bad_x = batches[0][0].data.copy()
    bad_x[0, 0, 0, 0] = cp.nan
    loss = step(bad_x, batches[0][1])  # a replay: no host check happened
    assert step.replays == 4 and np.isnan(float(loss.item()))
    assert not step.check_finite()
    assert step.check_finite()  # cleared by the previous check
    # A label out of range is not checked while replaying: the loss kernel gives NaN.
    _, fresh = _twin_models(_small_cnn)
    opt = optim.get("sgd", fresh.parameters(), lr=0.0)
    step = mg_cuda.graphed_step(fresh, loss_fn, opt, *batches[0], gemm=capture_gemm)
    step(*batches[0])
    step(batches[1][0], cp.full(8, 7, dtype=cp.int64))
    assert not step.check_finite()


@pytest.mark.parametrize("capture_gemm", CAPTURE_GEMMS)
def test_no_memory_growth_across_replays(capture_gemm):
    _, graphed = _twin_models(lambda: exercise_cnn(4))
    loss_fn = mg.losses.get("cross_entropy")
    opt = optim.get("adam", graphed.parameters(), lr=1e-4)
    (x, y), = _batches([16], (3, 80, 80), 4)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt, x, y, gemm=capture_gemm)
    step(x, y)
    step(x, y)
    cp.cuda.get_current_stream().synchronize()
    gc.collect()  # what the warm-up step left in reference cycles goes now, not later
    pool = cp.get_default_memory_pool()
    used, graph_bytes = pool.used_bytes(), step.graph_memory_bytes
    free_before = cp.cuda.runtime.memGetInfo()[0]  # also sees memory outside CuPy's pool
    assert graph_bytes > 0
    for _ in range(100):
        step(x, y)
    cp.cuda.get_current_stream().synchronize()
    gc.collect()
    free_after = cp.cuda.runtime.memGetInfo()[0]
    assert pool.used_bytes() <= used, (pool.used_bytes(), used)
    assert step.graph_memory_bytes == graph_bytes
    assert step.replays == 101
    # Nothing (cuBLAS included) allocates outside the pool step after step.
    assert free_after >= free_before - (4 << 20), (
        f"free GPU memory fell by {(free_before - free_after) / 2**20:.1f} MiB over 100 replays")
    if capture_gemm == "cublas":
        # A recapture (a frozen hyper-parameter changed) reuses the handle and workspace.
        handles = dict(cublas_capture._handles)
        opt.param_groups[0]["weight_decay"] = 1e-4
        step(x, y)
        step(x, y)
        assert step.captures == 2 and step.replays == 102
        assert cublas_capture._handles == handles


def test_a_step_that_reads_back_cannot_be_captured_and_says_so():
    _, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")

    def loss_that_syncs(output, y):
        loss = loss_fn(output, y)
        if float(loss.item()) > 1e9:  # a host read inside the step
            raise AssertionError("unreachable")
        return loss
    opt = optim.get("sgd", graphed.parameters(), lr=0.1)
    batches = _batches([8, 8], (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_that_syncs, opt, *batches[0])
    with pytest.raises(RuntimeError, match="could not be captured in a CUDA graph"):
        step(*batches[0])
    assert all(p.grad is not None for p in graphed.parameters())  # the warm-up's grads
    # The stream and the memory pool are still usable afterwards.
    _eager_step(graphed, loss_fn, opt, *batches[1])
