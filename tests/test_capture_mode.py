"""CUDA-graph capture plumbing that runs without a GPU: the capture flag, the ops that
consult it, the "matmul" kernel-table entry, and graphed_step's refusal of a CPU model.

The graph itself (capture, replay, schedulers, fallback, memory) is tested on a GPU in
tests/test_cuda_graph_gpu.py; the CUDA kernels it uses in tests/kernels/test_gemm_cuda_emulated.py.
"""
import numpy as np
import pytest

import minigrad as mg
import minigrad.cuda as mg_cuda
from minigrad import backend, nn, optim
from minigrad import functional as F


def test_the_capture_flag_is_scoped():
    assert not backend.is_capturing()
    with backend.capturing():
        assert backend.is_capturing()
        with backend.capturing():
            assert backend.is_capturing()
        assert backend.is_capturing()  # the inner exit restores, not clears
    assert not backend.is_capturing()
    with pytest.raises(KeyError):
        with backend.capturing():
            raise KeyError("inside")
    assert not backend.is_capturing()


def test_labels_are_checked_on_the_host_unless_capturing():
    logits = mg.tensor(np.zeros((3, 4), np.float32))
    bad = np.array([0, 4, 1])
    with pytest.raises(ValueError, match="label 4 is outside \\[0, 4\\)"):
        F.cross_entropy(logits, bad)
    with pytest.raises(ValueError, match="label -1 is outside"):
        F.nll_loss(logits, np.array([0, -1, 1]))
    with backend.capturing():
        # The range check would read a device value back: skipped while capturing.
        labels = F._class_labels(bad, logits, "cross_entropy")
        assert labels.dtype == np.int64 and labels.tolist() == [0, 4, 1]
        # The checks that need no device value still run.
        with pytest.raises(TypeError, match="must be integers"):
            F._class_labels(np.array([0.5, 1, 2]), logits, "cross_entropy")
        with pytest.raises(ValueError, match="labels of shape"):
            F._class_labels(np.array([0, 1]), logits, "cross_entropy")
    good = F.cross_entropy(logits, np.array([0, 3, 1]))
    assert good.item() == pytest.approx(np.log(4))


@pytest.fixture
def counted_matmul(monkeypatch):
    """The CPU table's "matmul", wrapped to count calls."""
    table = backend.kernel_table("cpu")
    original = table["matmul"]
    calls = []

    def counting(a, b):
        calls.append((a.shape, b.shape))
        return original(a, b)
    monkeypatch.setitem(table, "matmul", counting)
    return calls


def test_linear_and_matmul_multiply_through_the_kernel_table(counted_matmul, rng):
    x = mg.tensor(rng.standard_normal((5, 3)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(4), requires_grad=True)
    y = F.linear(x, w, b)
    assert counted_matmul == [((5, 3), (3, 4))]
    y.sum().backward()
    assert len(counted_matmul) == 3  # gx and gw in the backward
    np.testing.assert_allclose(y.numpy(), x.numpy() @ w.numpy().T + b.numpy())
    np.testing.assert_allclose(x.grad, np.ones((5, 4)) @ w.numpy())
    np.testing.assert_allclose(w.grad, np.ones((5, 4)).T @ x.numpy())
    counted_matmul.clear()
    a = mg.tensor(rng.standard_normal((2, 5, 3)), requires_grad=True)
    z = a @ w.T
    z.sum().backward()
    assert len(counted_matmul) == 3
    np.testing.assert_allclose(a.grad, np.ones((2, 5, 4)) @ w.numpy())


@pytest.mark.parametrize("mode", ["reference", "fast"])
def test_the_cpu_matmul_entries_are_numpy_matmul(rng, monkeypatch, mode):
    from kernels.reference import KERNELS as reference
    from kernels.reference import linalg
    from kernels.cpu import linalg as cpu_linalg
    assert reference["matmul"] is linalg.matmul
    # The reference table's entry is np.matmul; the fast table's splits large products
    # over the kernels' threads (kernels/cpu/linalg.py) and must give the same numbers.
    expected = linalg.matmul if mode == "reference" else cpu_linalg.matmul
    monkeypatch.setenv("MINIGRAD_KERNELS", mode)
    assert backend.kernel_table("cpu", mode)["matmul"] is expected
    product = backend.kernel("matmul", "cpu")
    assert product is expected
    a, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((4, 5))
    out = product(a, b)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, np.matmul(a, b))
    # A second formulation, so the check does not rest on np.matmul alone.
    np.testing.assert_allclose(out, np.einsum("bij,jk->bik", a, b), rtol=1e-12, atol=1e-12)
    c = rng.standard_normal(4).astype(np.float32)
    assert product(c, c.astype(np.float32)).dtype == np.float32


def test_a_training_step_is_unchanged_under_the_capture_flag(rng):
    """On the CPU the flag only skips host checks: the numbers stay the same."""
    results = []
    for flag in (False, True):
        mg.manual_seed(3)
        model = nn.Sequential(nn.Dense(6, 5), nn.ReLU(), nn.Dropout(0.3), nn.Dense(5, 3))
        opt = optim.get("adam", model.parameters(), lr=1e-2)
        x = mg.tensor(np.arange(24, dtype=np.float32).reshape(4, 6) / 24)
        y = np.array([0, 2, 1, 2])
        for _ in range(3):
            if flag:
                with backend.capturing():
                    loss = F.cross_entropy(model(x), y)
            else:
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        results.append([p.numpy().copy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_graphed_step_refuses_a_cpu_model():
    model = nn.Sequential(nn.Dense(3, 2))
    opt = optim.get("sgd", model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="need the model .* on 'cuda'.*\\['cpu'\\]"):
        mg_cuda.graphed_step(model, mg.losses.get("cross_entropy"), opt,
                             np.zeros((4, 3), np.float32), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="no parameters"):
        mg_cuda.graphed_step(nn.Sequential(nn.ReLU()), mg.losses.get("mse"), opt,
                             np.zeros((4, 3), np.float32), np.zeros(4, np.int64))


def test_new_optimizer_state_made_during_a_capture_is_found_and_removed():
    """The guard that keeps a graph from re-initialising optimizer state on replay."""
    a, b = nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(2, np.float32))
    opt = optim.get("rmsprop", [a, b], lr=0.1)
    a.grad = np.ones(2, np.float32)
    opt.step()
    before = {key: tuple(state) for key, state in opt.state.items()}
    assert mg_cuda._new_state_entries(opt, before) == ""
    opt.param_groups[0]["momentum"] = 0.9
    b.grad = np.ones(2, np.float32)
    opt.step()  # b gets state; a gets a momentum buffer
    described = mg_cuda._new_state_entries(opt, before)
    assert "a new parameter's state" in described and "'momentum_buffer'" in described
    assert {key: tuple(state) for key, state in opt.state.items()} == before


@pytest.mark.skipif(backend.cuda_available(), reason="checks the error without a GPU")
def test_allow_tf32_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="device 'cuda'"):
        mg_cuda.allow_tf32(True)


def _recorded_kernel_calls(monkeypatch):
    """Replace the optimizers' update kernels by a recorder of their lr= and step=."""
    calls = []

    def recorder(name, param):
        return lambda *arrays, **kwargs: calls.append((kwargs["lr"], kwargs.get("step")))

    monkeypatch.setattr(optim.Optimizer, "_kernel", staticmethod(recorder))
    return calls


def test_an_optimizer_recording_its_update_reads_lr_and_step_from_device_arrays(monkeypatch):
    """The protocol a CUDA graph replays an update through, with NumPy arrays standing in
    for device memory: while recording, the update reads the lr and advances the step
    count in the declared arrays and leaves the host's groups and state alone; sync
    copies what the host changed, advance counts the replayed step on the host."""
    a, b, late = (nn.Parameter(np.ones(2, np.float32)) for _ in range(3))
    opt = optim.get("adam", [a, b], lr=0.1)
    opt.add_param_group({"params": [late], "lr": 0.2})
    a.grad, b.grad = np.ones(2, np.float32), np.ones(2, np.float32)
    opt.step()  # a and b get their state; late has no gradient
    values = opt.replay_values(np)
    assert [s["step"] for s in values.counted] == [1, 1]
    values.sync()
    assert values.lrs.tolist() == [0.1, 0.2] and values.steps.tolist() == [1, 1]

    calls = _recorded_kernel_calls(monkeypatch)
    with values.recording():
        opt.step()
    assert len(calls) == 2
    for lr, step in calls:
        assert np.shares_memory(lr, values.lrs) and np.shares_memory(step, values.steps)
    assert values.steps.tolist() == [2, 2]  # advanced in place: what the graph records
    assert [opt.state[p]["step"] for p in (a, b)] == [1, 1]  # the host is untouched
    assert opt.param_groups[0]["lr"] == 0.1 and opt._replay is None

    values.advance()  # after a replay
    assert [opt.state[p]["step"] for p in (a, b)] == [2, 2]
    opt.param_groups[0]["lr"] = 0.05  # a scheduler between replays
    values.sync()
    assert values.lrs.tolist() == [0.05, 0.2]
    assert values.still_valid()
    opt.param_groups[0]["betas"] = (0.8, 0.999)  # frozen into the graph
    assert not values.still_valid()

    calls.clear()
    opt.step()  # outside a recording: host numbers, host counts
    assert calls == [(0.05, 3), (0.05, 3)]


def test_the_dropout_stream_declares_its_position_for_replays():
    mg.manual_seed(3)
    mg.random.take_offsets(10)
    stream = mg.random.replay_values(np)
    with stream.recording():
        assert mg.random.take_offsets(7) == (3, 10)  # a recorded step drawing 7 values
    assert stream.consumed == 7 and stream.offset.tolist() == [7]  # moved on in the graph
    assert mg.random.take_offsets(0) == (3, 10)  # the recording took nothing on the host
    stream.sync()
    assert stream.offset.tolist() == [10]
    stream.advance()  # a replay drew 7
    assert mg.random.take_offsets(0) == (3, 17)
    assert stream.still_valid()
    mg.manual_seed(4)
    assert not stream.still_valid()
