"""The graph-safe GEMM and whole-step CUDA graphs (minigrad.cuda) on a real GPU.

Marked ``gpu``: skipped where CuPy or a GPU is missing. What runs without a GPU is in
tests/test_capture_mode.py (the flag and the ops that read it) and
tests/test_gemm_cuda_emulated.py (the same CUDA C on the CPU emulator).
"""
import gc

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim
from minigrad.optim import lr_scheduler
from test_nn import exercise_cnn

pytestmark = pytest.mark.gpu

if not mg.cuda_available():
    pytest.skip("needs CuPy and a CUDA GPU", allow_module_level=True)

import cupy as cp  # noqa: E402  (after the skip)

import minigrad.cuda as mg_cuda  # noqa: E402
from kernels.cuda import gemm  # noqa: E402

TRANSPOSES = [(False, False), (True, False), (False, True), (True, True)]


def _normal(gen, shape, dtype=np.float32):
    return cp.asarray(gen.standard_normal(shape).astype(dtype))


def _close_to_cublas(got, a, b, dtype):
    """Against cuBLAS, relative to the scale of |a| @ |b| (different summation orders)."""
    want = cp.matmul(a, b)
    scale = cp.matmul(cp.abs(a), cp.abs(b))
    k = a.shape[-1]
    eps = np.finfo(dtype).eps
    assert got.shape == want.shape and got.dtype == want.dtype
    excess = cp.abs(got - want) - (2 * k + 4) * eps * scale
    assert float(excess.max()) <= 0, float(excess.max())


# ------------------------------------------------------------------ the GEMM
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a,trans_b", TRANSPOSES)
@pytest.mark.parametrize("split_k", [None, 1, 5])
def test_gemm_against_cublas_on_odd_shapes(dtype, trans_a, trans_b, split_k):
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


def test_matmul_dispatch_and_the_gemm_inside_a_captured_graph():
    gen = np.random.default_rng(3)
    a, b = _normal(gen, (32, 12800)), _normal(gen, (128, 12800))
    gemm.load(np.float32)
    assert not gemm.stream_is_capturing()
    eager = gemm.matmul(a, b.T)  # cuBLAS
    stream = cp.cuda.Stream(non_blocking=True)
    outputs = []
    with stream:
        stream.begin_capture()
        assert gemm.stream_is_capturing()
        outputs.append(gemm.matmul(a, b.T))  # must not raise: the tiled GEMM
        graph = stream.end_capture()
    a[...] = _normal(gen, a.shape)  # the graph reads the new values on replay
    graph.launch()  # on the current (default) stream: after the copy above
    cp.cuda.get_current_stream().synchronize()
    _close_to_cublas(outputs[0], a, b.T, np.float32)
    assert not cp.allclose(outputs[0], eager)


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


@pytest.fixture
def graph_safe_gemm(monkeypatch):
    """Eager steps multiply with the graph's GEMM too, so both do the same arithmetic.

    Against cuBLAS, rounding differs by an ulp, and that is enough to move a 2x2
    max-pool's choice between two near-equal values, routing a whole gradient
    elsewhere: a real, but uninformative, difference. With the same GEMM, the
    graphed and the eager steps must agree to the last few ulps.
    """
    monkeypatch.setattr(gemm, "stream_is_capturing", lambda: True)


def _assert_same_parameters(a, b, rtol=1e-6, atol=1e-8):
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_allclose(pb, pa, rtol=rtol, atol=atol, err_msg=name)


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
def test_graphed_steps_match_eager_steps(graph_safe_gemm, name, kwargs):
    eager, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get(name, eager.parameters(), **kwargs)
    opt_g = optim.get(name, graphed.parameters(), **kwargs)
    batches = _batches([8] * 6, (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0])
    for x, y in batches:
        want = _eager_step(eager, loss_fn, opt_e, x, y)
        got = step(x, y)
        assert got.device == "cuda" and got.shape == ()
        assert float(got.item()) == pytest.approx(float(want.item()), rel=1e-6, abs=1e-8)
    assert (step.captures, step.replays, step.eager_steps) == (1, 5, 1)
    _assert_same_parameters(eager, graphed)
    # The host mirrors of the device step counts: state_dict() tells the truth.
    if "step" in opt_e.state_dict()["state"][0]:
        assert opt_g.state_dict()["state"][0]["step"] == opt_e.state_dict()["state"][0]["step"]
    # p.grad holds the latest step's gradients, written in place by the replay.
    for pe, pg in zip(eager.parameters(), graphed.parameters()):
        np.testing.assert_allclose(cp.asnumpy(pg.grad), cp.asnumpy(pe.grad),
                                   rtol=1e-5, atol=1e-8)


def test_the_exercise_cnn_graphed_in_float64_matches_eager_closely():
    """Against cuBLAS eager steps: float64 keeps the max-pool choices apart."""
    eager, graphed = _twin_models(lambda: exercise_cnn(4), dtype=np.float64)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("adam", eager.parameters(), lr=1e-3)
    opt_g = optim.get("adam", graphed.parameters(), lr=1e-3)
    batches = _batches([4] * 4, (3, 80, 80), 4, dtype=np.float64)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0])
    for x, y in batches:
        _eager_step(eager, loss_fn, opt_e, x, y)
        step(x, y)
    assert step.replays == 3
    _assert_same_parameters(eager, graphed, rtol=1e-9, atol=1e-11)


def test_dropout_masks_advance_between_replays_as_in_eager_steps(graph_safe_gemm):
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
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0])
    for x, y in batches:
        step(x, y)
    assert step.replays == 4 and step.eager_steps == 2
    assert mg.random.take_offsets(0)[1] == eager_offset  # the host stream kept pace
    _assert_same_parameters(eager, graphed)


def test_schedulers_change_the_learning_rate_between_replays(graph_safe_gemm):
    eager, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("sgd", eager.parameters(), lr=0.1, momentum=0.9)
    opt_g = optim.get("sgd", graphed.parameters(), lr=0.1, momentum=0.9)
    sched_e = lr_scheduler.StepLR(opt_e, step_size=2, gamma=0.3)
    sched_g = lr_scheduler.StepLR(opt_g, step_size=2, gamma=0.3)
    batches = _batches([8] * 7, (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0])
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


def test_the_last_smaller_batch_falls_back_to_an_eager_step(graph_safe_gemm):
    eager, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt_e = optim.get("adam", eager.parameters(), lr=1e-3)
    opt_g = optim.get("adam", graphed.parameters(), lr=1e-3)
    batches = _batches([8, 8, 8, 5, 8, 8, 5], (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt_g, *batches[0])
    for x, y in batches:
        _eager_step(eager, loss_fn, opt_e, x, y)
        loss = step(x, y)
        assert step.output.shape == (x.shape[0], 5)
        assert loss.shape == ()
    assert (step.replays, step.eager_steps) == (4, 3)
    _assert_same_parameters(eager, graphed)
    assert opt_g.state_dict()["state"][0]["step"] == 7


def test_nonfinite_losses_are_flagged_on_the_device():
    _, graphed = _twin_models(_small_cnn)
    loss_fn = mg.losses.get("cross_entropy")
    opt = optim.get("adam", graphed.parameters(), lr=1e-3)
    batches = _batches([8] * 4, (3, 16, 16), 5)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt, *batches[0])
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
    step = mg_cuda.graphed_step(fresh, loss_fn, opt, *batches[0])
    step(*batches[0])
    step(batches[1][0], cp.full(8, 7, dtype=cp.int64))
    assert not step.check_finite()


def test_no_memory_growth_across_replays():
    _, graphed = _twin_models(lambda: exercise_cnn(4))
    loss_fn = mg.losses.get("cross_entropy")
    opt = optim.get("adam", graphed.parameters(), lr=1e-4)
    (x, y), = _batches([16], (3, 80, 80), 4)
    step = mg_cuda.graphed_step(graphed, loss_fn, opt, x, y)
    step(x, y)
    step(x, y)
    cp.cuda.get_current_stream().synchronize()
    gc.collect()  # what the warm-up step left in reference cycles goes now, not later
    pool = cp.get_default_memory_pool()
    used, graph_bytes = pool.used_bytes(), step.graph_memory_bytes
    assert graph_bytes > 0
    for _ in range(100):
        step(x, y)
    cp.cuda.get_current_stream().synchronize()
    gc.collect()
    assert pool.used_bytes() <= used
    assert step.graph_memory_bytes == graph_bytes
    assert step.replays == 101


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
