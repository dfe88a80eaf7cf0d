"""Convolution beyond the exercise (issue 13): groups, dilation, per-side and 'same'
padding, conv1d, conv_transpose2d and their layers, against finite differences and
PyTorch."""
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import backend
from minigrad import functional as F
from minigrad import nn
from tests.helpers.gradcheck import check_gradients, check_layer_gradients
from tests.helpers.torch_oracle import check_against_torch, load_torch_state

CONV_CASES = [  # (x shape, weight shape, stride, padding, dilation, groups)
    ((2, 4, 6, 7), (6, 2, 3, 3), 1, 1, 2, 2),
    ((1, 3, 7, 5), (3, 1, 2, 3), 2, (1, 0), 1, 3),  # depthwise, odd sizes, batch 1
    ((2, 4, 7, 7), (4, 1, 3, 3), 2, 2, (2, 1), 4),
    ((1, 2, 6, 6), (4, 2, 3, 2), (2, 1), 0, (1, 2), 1),
]

EXACT = dict(atol=1e-10, rtol=1e-10)  # float64 throughout: torch's numbers to rounding


def randn(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv2d_groups_and_dilation_gradients(rng, kernel_mode, xs, ws, stride, padding,
                                              dilation, groups):
    check_gradients(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
                    randn(rng, *xs), randn(rng, *ws), randn(rng, ws[0]))


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv2d_groups_and_dilation_agree_with_pytorch(kernel_mode, xs, ws, stride, padding,
                                                       dilation, groups):
    torch = pytest.importorskip("torch")
    args = (stride, padding, dilation, groups)
    check_against_torch([xs, ws, (ws[0],)], lambda *t: torch.nn.functional.conv2d(*t, *args),
                        lambda *t: F.conv2d(*t, *args), dtype=np.float32, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel, dilation", [(3, 2), (4, 1), (4, 3), (2, 2), (5, 1)])
def test_same_padding_with_dilation_keeps_the_size_as_torch(rng, kernel, dilation):
    x, w = randn(rng, 1, 2, 6, 7), randn(rng, 3, 2, kernel, kernel)
    out = check_gradients(lambda xt, wt: F.conv2d(xt, wt, None, 1, "same", dilation), x, w)
    assert out.shape == (1, 3, 6, 7)
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():  # torch's note on even kernels, once per process
        warnings.simplefilter("ignore")
        args = (None, 1, "same", dilation)
        check_against_torch([x, w], lambda *t: torch.nn.functional.conv2d(*t, *args),
                            lambda *t: F.conv2d(*t, *args), **EXACT)


def test_per_side_padding_is_pad_then_conv(rng):
    torch = pytest.importorskip("torch")
    x, w = randn(rng, 1, 2, 5, 6), randn(rng, 3, 2, 3, 3)
    check_gradients(lambda xt, wt: F.conv2d(F.pad(xt, (0, 2, 1, 0)), wt), x, w)
    tf = torch.nn.functional
    check_against_torch([x, w], lambda xt, wt: tf.conv2d(tf.pad(xt, (0, 2, 1, 0)), wt),
                        lambda xt, wt: F.conv2d(F.pad(xt, (0, 2, 1, 0)), wt), **EXACT)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 2, 2),
                                                               (1, "same", 3, 4)])
def test_conv1d_gradients_and_pytorch(rng, stride, padding, dilation, groups):
    x, w, b = randn(rng, 2, 4, 9), randn(rng, 4, 4 // groups, 3), randn(rng, 4)
    args = (stride, padding, dilation, groups)
    check_gradients(lambda *t: F.conv1d(*t, *args), x, w, b)
    torch = pytest.importorskip("torch")
    check_against_torch([x, w, b], lambda *t: torch.nn.functional.conv1d(*t, *args),
                        lambda *t: F.conv1d(*t, *args), **EXACT)


TRANSPOSE_CASES = [  # (x shape, weight shape, stride, padding, output_padding, groups, dilation)
    ((1, 2, 3, 4), (2, 3, 3, 3), 1, 0, 0, 1, 1),
    ((2, 4, 3, 3), (4, 1, 3, 2), 2, 1, 1, 2, (1, 2)),
    ((1, 3, 4, 3), (3, 2, 2, 3), (3, 2), (0, 1), (2, 0), 1, 1),
    ((1, 2, 3, 3), (2, 2, 3, 3), 1, 1, 1, 2, 2),  # output_padding < dilation, >= stride
]


@pytest.mark.parametrize("xs, ws, stride, padding, output_padding, groups, dilation",
                         TRANSPOSE_CASES)
def test_conv_transpose2d_gradients_and_pytorch(rng, kernel_mode, xs, ws, stride, padding,
                                                output_padding, groups, dilation):
    x, w, b = randn(rng, *xs), randn(rng, *ws), randn(rng, ws[1] * groups)
    args = (stride, padding, output_padding, groups, dilation)
    check_gradients(lambda *t: F.conv_transpose2d(*t, *args), x, w, b)
    torch = pytest.importorskip("torch")
    check_against_torch([x, w, b], lambda *t: torch.nn.functional.conv_transpose2d(*t, *args),
                        lambda *t: F.conv_transpose2d(*t, *args), **EXACT)


def test_conv_transpose2d_is_the_adjoint_of_conv2d(rng):
    x, w = randn(rng, 1, 4, 7, 6), randn(rng, 6, 2, 3, 3)
    y = randn(rng, 1, 6, 4, 3)
    conv = F.conv2d(mg.tensor(x), mg.tensor(w), None, 2, 1, 1, 2).numpy()
    back = F.conv_transpose2d(mg.tensor(y), mg.tensor(w), None, 2, 1, (0, 1), 2).numpy()
    assert back.shape == x.shape
    np.testing.assert_allclose((conv * y).sum(), (x * back).sum(), rtol=1e-10)


@pytest.mark.parametrize("call, error, match", [
    (lambda x, w: F.conv2d(x, w, groups=3), ValueError, r"in_channels \(4\) must be divisible "
                                                        r"by groups \(3\)"),
    (lambda x, w: F.conv2d(x, w, groups=0), ValueError, "groups must be a positive int"),
    (lambda x, w: F.conv2d(x, w, groups=4), ValueError, "input has 4 channels.*expects 8"),
    (lambda x, w: F.conv2d(x, w, dilation=0, groups=2), ValueError, "dilation must be at least 1"),
    (lambda x, w: F.conv2d(x, w, dilation=3, groups=2), ValueError, "smaller than the kernel"),
    (lambda x, w: F.conv2d(x, w, padding="same", stride=2, groups=2), ValueError, "needs stride 1"),
    (lambda x, w: F.conv1d(x, w), ValueError, "conv1d: expected a 3-D input"),
    (lambda x, w: F.conv_transpose2d(x, w, output_padding=2, stride=2), ValueError,
     "output_padding .* smaller than either stride"),
    (lambda x, w: F.conv_transpose2d(x, w[:, :, :, :1], padding=3), ValueError,
     "gives an output of size"),
])
def test_conv_arguments_are_checked(call, error, match):
    x, w = mg.tensor(np.ones((1, 4, 5, 5))), mg.tensor(np.ones((4, 2, 3, 3)))
    with pytest.raises(error, match=match):
        call(x, w)


# ------------------------------------------------------------------------------ layers

def _torch_twin(ours, theirs, shape, rng, tol=1e-5):
    """Copy torch's state into ours (same keys), compare outputs and input gradients."""
    torch = pytest.importorskip("torch")
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)
    x = rng.standard_normal(shape).astype(np.float32)
    xt, tt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(xt), theirs(tt)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(xt.grad, tt.grad.numpy(), rtol=tol, atol=tol)
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding, dilation", [(1, 1), ((2, 1), 1), ("same", 2)])
def test_conv2d_layer_padding_modes_match_pytorch(rng, padding_mode, padding, dilation):
    torch = pytest.importorskip("torch")
    args = dict(padding=padding, dilation=dilation, groups=2, padding_mode=padding_mode)
    _torch_twin(nn.Conv2d(4, 6, 3, **args), torch.nn.Conv2d(4, 6, 3, **args), (2, 4, 7, 6), rng)


def test_conv1d_and_conv_transpose2d_layers_match_pytorch(rng):
    torch = pytest.importorskip("torch")
    args = dict(padding=2, dilation=2, groups=2, padding_mode="reflect")
    _torch_twin(nn.Conv1d(4, 6, 3, **args), torch.nn.Conv1d(4, 6, 3, **args), (2, 4, 11), rng)
    args = dict(stride=2, padding=1, output_padding=1, groups=2)
    layer = nn.ConvTranspose2d(4, 6, 3, **args)
    assert layer.weight.shape == (4, 3, 3, 3)  # torch's (in, out/groups, kH, kW)
    _torch_twin(layer, torch.nn.ConvTranspose2d(4, 6, 3, **args), (2, 4, 4, 5), rng)
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
    ours = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
    load_torch_state(ours, theirs)
    x = rng.standard_normal((1, 4, 4, 5)).astype(np.float32)
    check_against_torch([x], lambda t: theirs(t, output_size=(8, 10)),
                        lambda t: ours(t, output_size=(8, 10)), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="output_size .* not reachable"):
        ours(mg.tensor(x), output_size=(11, 10))


def test_grouped_layers_gradcheck(rng):
    check_layer_gradients(nn.Conv2d(4, 4, 3, padding=1, groups=4, padding_mode="circular"),
                          rng.standard_normal((1, 4, 4, 5)))
    check_layer_gradients(nn.ConvTranspose2d(2, 4, 2, stride=2, groups=2),
                          rng.standard_normal((1, 2, 3, 2)))


def test_conv_layers_check_their_arguments():
    with pytest.raises(ValueError, match=r"Conv2d\(4, 6.*groups \(4\)"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 6, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="only padding_mode='zeros'"):
        nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"Conv1d.*expected input of shape \(N, 4, L\)"):
        nn.Conv1d(4, 6, 3)(mg.tensor(np.ones((1, 4, 5, 5), np.float32)))


def test_summary_and_repr_show_the_new_arguments():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=2, dilation=2, groups=1),
                          nn.Conv2d(8, 8, 3, padding=1, groups=8, padding_mode="reflect"),
                          nn.ConvTranspose2d(8, 4, 2, stride=2))
    text = model.summary((1, 3, 6, 6), print_fn=None)
    assert "(1, 4, 12, 12)" in text and "ConvTranspose2d" in text
    assert "dilation=(2, 2)" in repr(model) and "groups=8, padding_mode='reflect'" in repr(model)


# ------------------------------------------------------------------------------ GPU

GPU_CASES = {  # issue 13's convolution, pooling and resizing ops: CPU and CUDA agree
    "conv2d groups dilation": (lambda x, w: F.conv2d(x, w, None, 2, 1, 2, 2),
                               [(2, 4, 9, 8), (6, 2, 3, 3)]),
    "conv_transpose2d": (lambda x, w: F.conv_transpose2d(x, w, None, 2, 1, 1, 2),
                         [(2, 4, 5, 6), (4, 3, 3, 3)]),
    "conv1d": (lambda x, w: F.conv1d(x, w, None, 1, "same", 2), [(2, 4, 9), (3, 4, 3)]),
    "max_pool2d indices": (lambda x: F.max_pool2d(x, 3, 2, 1, 2, True, True)[0],
                           [(2, 3, 9, 8)]),
    "avg_pool2d ceil": (lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), [(2, 3, 9, 8)]),
    "adaptive": (lambda x: F.adaptive_max_pool2d(x, 4) + F.adaptive_avg_pool2d(x, 4),
                 [(2, 3, 9, 7)]),
    "unpool": (lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2),
               [(2, 3, 8, 6)]),
    "pad": (lambda x: F.pad(F.pad(x, (1, 2, 2, 1), "reflect"), (1, 1), value=2.0),
            [(2, 3, 5, 6)]),
    "interpolate": (lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear") +
                    F.interpolate(x, size=(7, 9)), [(2, 3, 5, 6)]),
}


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(GPU_CASES))
def test_new_ops_agree_on_the_gpu(rng, name):
    if not mg.cuda_available():
        pytest.skip("needs CuPy and a CUDA GPU")
    fn, shapes = GPU_CASES[name]
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    results = []
    for device in ("cpu", "cuda"):
        tensors = [mg.tensor(a, requires_grad=True, device=device) for a in arrays]
        out = fn(*tensors)
        (out * out).sum().backward()
        results.append([out.numpy()] + [backend.to_numpy(t.grad) for t in tensors])
    for cpu, gpu in zip(*results):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-4)
