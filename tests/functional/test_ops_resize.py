"""F.pad and F.interpolate (issue 13) and their layers (padding layers, nn.Upsample),
against finite differences and PyTorch."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import nn
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch


PADS = [
    ((1, 2), "constant", 3.0, (2, 3, 4, 5)),
    ((1, 2, 0, 3), "reflect", None, (2, 3, 4, 5)),
    ((2, 1, 3, 0), "replicate", None, (2, 3, 4, 5)),
    ((2, 1, 3, 4), "circular", None, (2, 3, 4, 5)),
    ((-1, 2, 1, -2, 1, 1), "constant", None, (2, 3, 4, 5)),
    ((1, 1, 2, 0, 0, 1, 1, 0), "constant", -1.0, (2, 3, 4, 5)),  # all four dims
    ((3, 3), "reflect", None, (3, 4)),  # unbatched 1-D
    ((1, 0, 1, 1, 0, 2), "replicate", None, (1, 2, 3, 3, 3)),  # 3-D
    ((1, 1), "circular", None, (2, 5)),
]


@pytest.mark.parametrize("amounts, mode, value, shape", PADS)
def test_pad(rng, amounts, mode, value, shape):
    check_gradients(lambda t: F.pad(t, amounts, mode, value), rng.standard_normal(shape))
    torch = pytest.importorskip("torch")
    check_against_torch([rng.standard_normal(shape).astype(np.float32)],
                        lambda t: torch.nn.functional.pad(t, amounts, mode, value),
                        lambda t: F.pad(t, amounts, mode, value), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("amounts, mode, value, shape, match", [
    ((1,), "constant", None, (2, 3), "even-length"),
    ((1, 1, 1, 1, 1, 1), "constant", None, (2, 3), "pads 3 dimensions .* only 2"),
    ((1, 1), "mirror", None, (2, 3), "unknown mode"),
    ((3, 0), "reflect", None, (2, 3), "smaller than the size 3"),
    ((4, 0), "circular", None, (2, 3), "at most the size 3"),
    ((1, 1), "reflect", None, (1, 2, 3, 3), "1 padded dimensions need a 2-D or 3-D input"),
    ((1, 1), "reflect", 2.0, (2, 3), "only for mode='constant'"),
    ((-1, 1), "replicate", None, (2, 3), "non-negative"),
    ((-2, -2), "constant", None, (2, 3), "crops more than"),
])
def test_pad_arguments_are_checked(amounts, mode, value, shape, match):
    with pytest.raises(ValueError, match=match):
        F.pad(mg.tensor(np.ones(shape)), amounts, mode, value)


INTERPOLATIONS = [dict(size=(5, 13)), dict(scale_factor=2), dict(scale_factor=(1.5, 0.7)),
                  dict(size=(3, 4)), dict(size=1)]
MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True),
         ("area", None)]


@pytest.mark.parametrize("mode, align_corners", MODES)
@pytest.mark.parametrize("how", INTERPOLATIONS)
def test_interpolate_matches_pytorch(rng, mode, align_corners, how):
    torch = pytest.importorskip("torch")
    args = dict(mode=mode, align_corners=align_corners, **how)
    check_against_torch([rng.standard_normal((2, 3, 7, 9)).astype(np.float32)],
                        lambda t: torch.nn.functional.interpolate(t, **args),
                        lambda t: F.interpolate(t, **args), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode, align_corners", MODES[:4])
def test_interpolate_gradients(rng, mode, align_corners):
    for how in (dict(size=(5, 4)), dict(scale_factor=1.7)):
        check_gradients(lambda t: F.interpolate(t, mode=mode, align_corners=align_corners,
                                                **how), rng.standard_normal((1, 2, 3, 4)))


def test_linear_interpolation_of_sequences(rng):
    x = rng.standard_normal((2, 3, 6))
    check_gradients(lambda t: F.interpolate(t, scale_factor=2.5, mode="linear"), x)
    torch = pytest.importorskip("torch")
    for align in (False, True):
        args = dict(size=11, mode="linear", align_corners=align)
        check_against_torch([x], lambda t: torch.nn.functional.interpolate(t, **args),
                            lambda t: F.interpolate(t, **args), atol=1e-6, rtol=1e-6)
    check_against_torch([x], lambda t: torch.nn.functional.interpolate(t, scale_factor=3),
                        lambda t: F.interpolate(t, scale_factor=3), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(), "exactly one of size and scale_factor"),
    (dict(size=4, scale_factor=2), "exactly one of size and scale_factor"),
    (dict(size=(4, 0)), "size must be a positive int"),
    (dict(scale_factor=-1), "scale_factor must be a positive number"),
    (dict(scale_factor=0.1), "leaves an empty output"),
    (dict(size=4, mode="cubic"), "unknown mode"),
    (dict(size=4, mode="linear"), "needs a 3-D input"),
    (dict(size=4, align_corners=True), "only for the linear modes"),
])
def test_interpolate_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.interpolate(mg.tensor(np.ones((1, 1, 4, 4))), **kwargs)


def test_resize_and_padding_layers_match_pytorch(rng):
    torch = pytest.importorskip("torch")
    pairs = [
        (nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
         torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)),
        (nn.Upsample(size=(7, 3)), torch.nn.Upsample(size=(7, 3))),
        (nn.ZeroPad2d((1, 2, 0, 1)), torch.nn.ZeroPad2d((1, 2, 0, 1))),
        (nn.ConstantPad2d(2, 1.5), torch.nn.ConstantPad2d(2, 1.5)),
        (nn.ReflectionPad2d(2), torch.nn.ReflectionPad2d(2)),
        (nn.ReplicationPad2d((1, 0, 2, 3)), torch.nn.ReplicationPad2d((1, 0, 2, 3))),
        (nn.CircularPad2d(1), torch.nn.CircularPad2d(1)),
    ]
    for ours, theirs in pairs:
        check_against_torch([rng.standard_normal((2, 3, 4, 5)).astype(np.float32)], theirs,
                            ours, atol=1e-6, rtol=1e-6)
        assert ours.state_dict() == {}
    model = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(2, 2, 3), nn.Upsample(scale_factor=2))
    assert "(1, 2, 10, 12)" in model.summary((1, 2, 5, 6), print_fn=None)
    with pytest.raises(TypeError, match="padding must be an int or 4 ints"):
        nn.ReflectionPad2d((1, 2))
