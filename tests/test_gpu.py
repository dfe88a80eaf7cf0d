"""The whole engine on a CUDA GPU agrees with the CPU (skipped without CuPy and a GPU)."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import losses, nn, optim
from minigrad.models import exercise_cnn

pytestmark = pytest.mark.gpu

if not mg.cuda_available():
    pytest.skip("needs CuPy and a CUDA GPU", allow_module_level=True)


def _pair_of_models(num_classes=4, seed=0):
    mg.manual_seed(seed)
    cpu = exercise_cnn(num_classes)
    gpu = exercise_cnn(num_classes)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda")


def test_exercise_cnn_forward_gradients_and_adam_steps_agree():
    cpu, gpu = _pair_of_models()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 80, 80)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 1])
    loss_fn = losses.get("cross_entropy")
    opt_cpu = optim.get("adam", cpu.parameters(), lr=1e-3)
    opt_gpu = optim.get("adam", gpu.parameters(), lr=1e-3)
    for step in range(10):
        losses_seen = []
        for model, opt, device in ((cpu, opt_cpu, "cpu"), (gpu, opt_gpu, "cuda")):
            loss = loss_fn(model(mg.tensor(x, device=device)), mg.tensor(y, device=device))
            opt.zero_grad()
            loss.backward()
            if step == 0:
                model.grads_at_start = [p.grad.copy() if device == "cpu" else p.grad.get()
                                        for p in model.parameters()]
            opt.step()
            losses_seen.append(loss.item())
        assert losses_seen[0] == pytest.approx(losses_seen[1], rel=1e-4, abs=1e-5)
    for g_cpu, g_gpu in zip(cpu.grads_at_start, gpu.grads_at_start):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-3, atol=1e-5)
    for (name, a), b in zip(cpu.state_dict().items(), gpu.state_dict().values()):
        assert isinstance(b, np.ndarray), name  # state dicts are always NumPy
        # Adam divides by sqrt(v): a weight whose gradient is ~0 can flip its step on a
        # float32 rounding difference, so a handful of weights may differ by up to ~2 lr.
        off = np.abs(b - a) > 1e-5 + 1e-3 * np.abs(a)
        assert off.mean() < 1e-4, f"{name}: {off.sum()} of {off.size} weights differ"
        assert np.abs(b - a).max() < 2.5e-3, name


def test_mixing_devices_names_both():
    a = mg.tensor(np.ones(3, np.float32))
    b = mg.tensor(np.ones(3, np.float32), device="cuda")
    with pytest.raises(ValueError, match="cpu.*cuda|cuda.*cpu"):
        a + b
    layer = nn.Dense(3, 2).to("cuda")
    with pytest.raises(ValueError, match="cpu.*cuda|cuda.*cpu"):
        layer(mg.tensor(np.ones((1, 3), np.float32)))


def test_tensor_round_trip_and_module_moves():
    x = mg.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), device="cuda")
    assert x.device == "cuda"
    np.testing.assert_array_equal(x.to("cpu").numpy(), np.arange(6).reshape(2, 3))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).to("cuda")
    assert all(p.device == "cuda" for p in model.parameters())
    model(mg.tensor(np.ones((2, 3, 5, 5), np.float32), device="cuda"))
    assert model.to("cpu")[1].running_mean.__class__ is np.ndarray


def test_fit_with_a_cuda_graph_matches_eager_fit():
    from minigrad.data import DataLoader, TensorDataset
    rng = np.random.default_rng(1)
    x = rng.standard_normal((70, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 3, 70)

    class GraphCounts(mg.train.Callback):
        counts = None

        def on_train_end(self, logs=None):
            step = self.run.train_step  # an EagerStep has no graph counters
            self.counts = (step.captures, step.replays, step.eager_steps) \
                if hasattr(step, "captures") else None

    histories, spies = [], []
    for graphed in (False, True):
        mg.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Dense(8 * 8 * 8, 3)).to("cuda")
        loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True, seed=0)
        spies.append(GraphCounts())
        history = mg.train.fit(model, loader, epochs=3, verbose=0, cuda_graph=graphed,
                               callbacks=[spies[-1]])
        histories.append(history.history["loss"])
    # 70 = 2 full batches + a last batch of 6, 3 epochs: the first full batch is the
    # warm-up step before the capture, the other 5 are replays; the 3 last batches
    # and the warm-up are eager steps.
    assert spies[0].counts is None
    assert spies[1].counts == (1, 5, 4)
    np.testing.assert_allclose(histories[1], histories[0], rtol=2e-3)


def test_tf32_is_an_opt_in_that_switches_back():
    """float32 products stay float32 by default; allow_tf32 makes TF32's rounding visible
    (inputs cut to 10-bit mantissas), and turning it off restores the same bits."""
    import cupy as cp

    from kernels.cuda import gemm
    if int(cp.cuda.Device().compute_capability) < 80:
        pytest.skip("TF32 needs compute capability 8.0 or later")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 512)).astype(np.float32)
    b = rng.standard_normal((512, 128)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    da, db = cp.asarray(a), cp.asarray(b)
    fp32 = cp.asnumpy(gemm.matmul(da, db))
    previous = mg.cuda.allow_tf32(True)
    try:
        assert previous is False
        tf32 = cp.asnumpy(gemm.matmul(da, db))
    finally:
        mg.cuda.allow_tf32(previous)
    np.testing.assert_array_equal(cp.asnumpy(gemm.matmul(da, db)), fp32)
    error_fp32, error_tf32 = np.abs(fp32 - exact).max(), np.abs(tf32 - exact).max()
    assert error_tf32 > 8 * error_fp32, (error_fp32, error_tf32)
    assert error_tf32 < 5e-3 * np.abs(exact).max()


def test_module_to_cuda_makes_fortran_ordered_parameters_c_ordered_for_the_optimizer():
    layer = nn.Dense(3, 2)
    layer.weight.data = np.asfortranarray(layer.weight.data)
    weight = layer.weight.data.copy()
    layer.to("cuda")
    assert layer.weight.data.flags.c_contiguous
    np.testing.assert_array_equal(layer.weight.data.get(), weight)
    opt = optim.get("adam", layer.parameters(), lr=0.1)
    layer(mg.tensor(np.ones((4, 3), np.float32), device="cuda")).sum().backward()
    opt.step()  # the CUDA kernel updates in place: it refused an F-ordered parameter
    assert not np.array_equal(layer.weight.data.get(), weight)


@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss", "multi_margin_loss"])
def test_a_bad_label_on_the_gpu_gives_a_nan_loss_not_a_host_check(loss):
    import minigrad.functional as F
    logits = mg.tensor(np.zeros((3, 4), np.float32), device="cuda")
    labels = mg.tensor(np.array([0, 4, -1]), device="cuda")
    per_sample = getattr(F, loss)(logits, labels, reduction="none").numpy()
    np.testing.assert_array_equal(np.isnan(per_sample), [False, True, True])


def test_the_capture_gemm_promotes_mixed_operands_as_cupy_matmul_does():
    import cupy as cp

    from kernels.cuda import gemm
    rng = np.random.default_rng(0)
    a = cp.asarray(rng.standard_normal((33, 70)))                    # float64
    b = cp.asarray(rng.standard_normal((70, 17)).astype(np.float32))
    want = cp.matmul(a, b)
    for route in gemm.CAPTURE_GEMMS:
        gemm.prepare_capture(route, [np.float64])
        with gemm.capture_gemm(route, eager=True):
            got = gemm.matmul(a, b)
        assert got.dtype == want.dtype == np.float64, route
        np.testing.assert_allclose(cp.asnumpy(got), cp.asnumpy(want), rtol=1e-12, atol=1e-12)
