"""LayerNorm, GroupNorm, BatchNorm1d, Embedding, Identity, Dropout2d, attention:
gradients by finite differences, numbers and state dicts against torch, clear errors."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import nn
from tests.helpers.gradcheck import check_gradients, check_layer_gradients
from tests.helpers.torch_oracle import check_against_torch, load_torch_state

rng = np.random.default_rng(0)


def _torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ norms
def test_layer_norm_and_group_norm_gradients():
    x = rng.standard_normal((2, 4, 3))
    check_gradients(lambda a, w, b: F.layer_norm(a, (4, 3), w, b), x,
                    rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    check_gradients(lambda a: F.layer_norm(a, 3, eps=0.1), x)
    check_gradients(lambda a, w, b: F.group_norm(a, 2, w, b), x, rng.standard_normal(4),
                    rng.standard_normal(4))
    check_layer_gradients(nn.LayerNorm(3), x)
    check_layer_gradients(nn.GroupNorm(2, 4), x)


@pytest.mark.parametrize("shape,make", [
    ((3, 5, 6), lambda nn_: nn_.LayerNorm(6)),
    ((3, 5, 6), lambda nn_: nn_.LayerNorm((5, 6), eps=1e-3)),
    ((3, 5, 6), lambda nn_: nn_.LayerNorm(6, elementwise_affine=False)),
    ((3, 5, 6), lambda nn_: nn_.LayerNorm(6, bias=False)),
    ((2, 6, 4, 3), lambda nn_: nn_.GroupNorm(3, 6)),
    ((2, 6, 5), lambda nn_: nn_.GroupNorm(6, 6, affine=False)),
])
def test_norm_layers_match_torch(shape, make):
    torch = _torch()
    theirs = make(torch.nn).double()
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64))
    mine = load_torch_state(make(nn).double(), theirs)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    check_against_torch([rng.standard_normal(shape)], theirs, mine, atol=1e-10, rtol=1e-5)
    out = mine(mg.tensor(rng.standard_normal(shape), requires_grad=True))
    out.sum().backward()  # reaches the parameters
    assert all(p.grad is not None for p in mine.parameters())


@pytest.mark.parametrize("shape", [(6, 4), (5, 4, 3)])
def test_batchnorm1d_trains_and_evaluates_as_torch(shape):
    torch = _torch()
    mine, theirs = nn.BatchNorm1d(4).double(), torch.nn.BatchNorm1d(4).double()
    for _ in range(2):
        check_against_torch([rng.standard_normal(shape) * 3 + 1], theirs,
                            mine, atol=1e-10, rtol=1e-5)
    np.testing.assert_allclose(mine.running_var, theirs.running_var.numpy(), atol=1e-12)
    assert int(mine.num_batches_tracked) == 2
    mine.eval(), theirs.eval()
    check_against_torch([rng.standard_normal(shape)], theirs, mine, atol=1e-10, rtol=1e-5)
    check_layer_gradients(nn.BatchNorm1d(4), rng.standard_normal(shape))
    with pytest.raises(ValueError, match=r"\(N, 4\) or \(N, 4, L\)"):
        nn.BatchNorm1d(4)(mg.tensor(np.ones((2, 4, 3, 3), np.float32)))


def test_norm_errors_name_the_problem():
    x = mg.tensor(np.ones((2, 4, 3)))
    with pytest.raises(ValueError, match="does not end in normalized_shape"):
        F.layer_norm(x, (4,))
    with pytest.raises(ValueError, match="weight has shape"):
        F.layer_norm(x, 3, weight=mg.tensor(np.ones(4)))
    with pytest.raises(ValueError, match="dividing the 4 channels"):
        F.group_norm(x, 3)
    with pytest.raises(ValueError, match="divide num_channels"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="LayerNorm"):
        nn.LayerNorm(5)(x)
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(0)


# ------------------------------------------------------------------ embedding
def test_embedding_gradient_scatters_and_skips_padding():
    weight = rng.standard_normal((5, 3))
    index = np.array([[0, 2, 2], [4, 1, 2]])
    check_gradients(lambda w: F.embedding(index, w), weight)
    w = mg.tensor(weight, requires_grad=True)
    F.embedding(mg.tensor(index), w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad[:, 0], [1, 1, 0, 0, 1])  # row 2 gets nothing


def test_embedding_module_matches_torch():
    torch = _torch()
    mine = nn.Embedding(7, 4, padding_idx=-1)
    assert mine.padding_idx == 6 and not mine.weight.data[6].any()
    theirs = torch.nn.Embedding(7, 4, padding_idx=6)
    load_torch_state(mine, theirs)
    index = np.array([[1, 6, 3], [3, 3, 0]])
    out = mine(mg.tensor(index))
    out.backward(np.ones(out.shape, np.float32))
    theirs(torch.tensor(index)).sum().backward()
    np.testing.assert_array_equal(out.numpy(), theirs(torch.tensor(index)).detach().numpy())
    np.testing.assert_array_equal(mine.weight.grad, theirs.weight.grad.numpy())
    check_against_torch([rng.standard_normal((7, 4))],
                        lambda w: torch.nn.functional.embedding(torch.tensor(index), w,
                                                                padding_idx=1),
                        lambda w: F.embedding(index, w, padding_idx=1), atol=1e-12, rtol=1e-5)


def test_embedding_errors():
    w = mg.tensor(np.ones((5, 3), np.float32))
    with pytest.raises(IndexError, match="index 5 is out of range for 5"):
        F.embedding(np.array([1, 5]), w)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([1.0]), w)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 3, padding_idx=5)
    with pytest.raises(ValueError, match="max_norm"):
        nn.Embedding(5, 3, max_norm=1.0)


# ------------------------------------------------------------------ Identity, Dropout2d
def test_identity_returns_its_input():
    x = mg.tensor(np.ones(3))
    assert nn.Identity(54, unused="x")(x) is x


def test_dropout2d_drops_whole_channels_reproducibly():
    x = mg.tensor(np.ones((8, 16, 3, 3), np.float32), requires_grad=True)
    layer = nn.Dropout2d(0.5)
    mg.random.manual_seed(3)
    out = layer(x).numpy()
    per_channel = out.reshape(8, 16, 9)
    assert set(np.unique(per_channel)) == {0.0, 2.0}
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # one draw per channel
    assert 0.25 < (per_channel[:, :, 0] == 0).mean() < 0.75
    mg.random.manual_seed(3)
    np.testing.assert_array_equal(layer(x).numpy(), out)
    layer(x).sum().backward()
    assert set(np.unique(x.grad)) <= {0.0, 2.0}
    layer.eval()
    assert layer(x) is x
    check_gradients(lambda t: F.dropout2d(t, 0.3) if mg.random.manual_seed(1) is None else t,
                    rng.standard_normal((2, 3, 2, 2)))
    with pytest.raises(ValueError, match="3-D or 4-D"):
        F.dropout2d(mg.tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nn.Dropout2d(1.0)


# ------------------------------------------------------------------ attention
def _qkv(*lead, length=4, source=5, features=3):
    return (rng.standard_normal(lead + (length, features)),
            rng.standard_normal(lead + (source, features)),
            rng.standard_normal(lead + (source, 2)))


def test_scaled_dot_product_attention_gradient():
    float_mask = rng.standard_normal((4, 5))
    check_gradients(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, float_mask,
                                                                   scale=0.7), *_qkv(2))


@pytest.mark.parametrize("kwargs", [
    {}, {"is_causal": True}, {"scale": 0.3}, {"attn_mask": "bool"}, {"attn_mask": "float"},
    {"attn_mask": "bool-batched"},
])
def test_scaled_dot_product_attention_matches_torch(kwargs):
    torch = _torch()
    masks = {"bool": rng.random((4, 5)) > 0.3, "float": rng.standard_normal((4, 5)),
             "bool-batched": rng.random((2, 1, 4, 5)) > 0.3}
    masks["bool"][:, 0] = masks["bool-batched"][..., 0] = True  # no fully masked row
    mine, theirs = dict(kwargs), dict(kwargs)
    if "attn_mask" in kwargs:
        mine["attn_mask"] = masks[kwargs["attn_mask"]]
        theirs["attn_mask"] = torch.tensor(mine["attn_mask"])
    check_against_torch([*_qkv(2, 3)],
                        lambda *t: torch.nn.functional.scaled_dot_product_attention(*t, **theirs),
                        lambda *t: F.scaled_dot_product_attention(*t, **mine),
                        atol=1e-10, rtol=1e-5)


def test_scaled_dot_product_attention_dropout_is_seeded():
    q, k, v = (mg.tensor(a.astype(np.float32)) for a in _qkv(2))
    mg.random.manual_seed(5)
    first = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    mg.random.manual_seed(5)
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy(),
                                  first)
    assert not np.allclose(first, F.scaled_dot_product_attention(q, k, v).numpy())


def test_scaled_dot_product_attention_errors():
    q, k, v = (mg.tensor(a) for a in _qkv(2))
    with pytest.raises(ValueError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, np.ones((4, 5), bool), is_causal=True)
    with pytest.raises(ValueError, match="does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, np.ones((3, 5), bool))
    with pytest.raises(TypeError, match="boolean or floating"):
        F.scaled_dot_product_attention(q, k, v, np.ones((4, 5), int))
    with pytest.raises(ValueError, match="key and value lengths"):
        F.scaled_dot_product_attention(q, k, mg.tensor(np.ones((2, 4, 2))))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("case", ["self", "cross-masked", "unbatched", "heads-mask", "no-bias"])
def test_multihead_attention_matches_torch(batch_first, case):
    torch = _torch()
    bias = case != "no-bias"
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=batch_first, bias=bias).double()
    mine = nn.MultiheadAttention(8, 2, batch_first=batch_first, bias=bias).double()
    assert list(mine.state_dict()) == list(theirs.state_dict())
    load_torch_state(mine, theirs)
    n, length, source = 3, 4, 5
    lead = (lambda s: (n, s)) if batch_first else (lambda s: (s, n))
    q = rng.standard_normal(lead(length) + (8,))
    kv = q if case in ("self", "no-bias") else rng.standard_normal(lead(source) + (8,))
    kwargs = {}
    if case == "cross-masked":
        padding = rng.random((n, source)) > 0.7
        padding[:, 0] = False
        blocked = rng.random((length, source)) > 0.7
        blocked[:, 0] = False
        kwargs = {"key_padding_mask": padding, "attn_mask": blocked}
    elif case == "unbatched":
        q, kv = q[0] if batch_first else q[:, 0], kv[0] if batch_first else kv[:, 0]
        kwargs = {"attn_mask": rng.random((length, source)) > 0.8}
    elif case == "heads-mask":
        kwargs = {"attn_mask": rng.standard_normal((n * 2, length, source)),
                  "average_attn_weights": False}
    t = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    tq, tkv = torch.tensor(q, requires_grad=True), torch.tensor(kv)
    expected, expected_w = theirs(tq, tkv, tkv, **t)
    mq = mg.tensor(q, requires_grad=True)
    out, weights = mine(mq, mg.tensor(kv), mg.tensor(kv), **kwargs)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(weights.numpy(), expected_w.detach().numpy(), atol=1e-10)
    (out.sum() + weights.sum()).backward()
    (expected.sum() + expected_w.sum()).backward()
    np.testing.assert_allclose(mq.grad, tq.grad.numpy(), atol=1e-10)
    for name, p in mine.named_parameters():
        np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(),
                                   atol=1e-10, err_msg=name)
    assert mine(mq, mg.tensor(kv), mg.tensor(kv), need_weights=False, **kwargs)[1] is None


def test_multihead_attention_gradient_and_errors():
    layer = nn.MultiheadAttention(4, 2, batch_first=True)
    check_layer_gradients(_SelfAttention(layer), rng.standard_normal((2, 3, 4)))
    x = mg.tensor(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="not supported"):
        nn.MultiheadAttention(4, 2, kdim=3)
    with pytest.raises(ValueError, match="E = 4"):
        layer(mg.tensor(np.ones((2, 3, 5), np.float32)), x, x)
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        layer(x, x, x, key_padding_mask=np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="attn_mask must have shape"):
        layer(x, x, x, attn_mask=np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match="is_causal"):
        layer(x, x, x, is_causal=True)


class _SelfAttention(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.attention = attention

    def forward(self, x):
        return self.attention(x, x, x)[0]


@pytest.mark.gpu
def test_norms_embedding_and_attention_on_gpu_match_cpu():
    if not mg.cuda_available():
        pytest.skip("no CUDA device")
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    for layer in (nn.LayerNorm(6), nn.GroupNorm(2, 4), nn.BatchNorm1d(4),
                  _SelfAttention(nn.MultiheadAttention(6, 2, batch_first=True))):
        cpu = layer(mg.tensor(x)).numpy()
        np.testing.assert_allclose(layer.to("cuda")(mg.tensor(x, device="cuda")).numpy(), cpu,
                                   atol=1e-5, err_msg=repr(layer))
    emb = nn.Embedding(5, 3)
    cpu = emb(mg.tensor(np.array([1, 4]))).numpy()
    np.testing.assert_array_equal(emb.to("cuda")(mg.tensor(np.array([1, 4]), device="cuda"))
                                  .numpy(), cpu)


# ------------------------------------------------------------------ flatten
@pytest.mark.parametrize("start_dim,end_dim", [(1, -1), (0, -1), (1, 2), (2, 3), (-3, -2),
                                               (0, 0), (3, -1)])
def test_flatten_start_and_end_dim_match_torch(start_dim, end_dim):
    torch = _torch()
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    ours, theirs = nn.Flatten(start_dim, end_dim), torch.nn.Flatten(start_dim, end_dim)
    y = ours(mg.tensor(x))
    np.testing.assert_array_equal(y.numpy(), theirs(torch.tensor(x)).numpy())
    assert repr(ours) == repr(theirs)  # Flatten(start_dim=1, end_dim=-1), torch's words
    check_layer_gradients(ours, x.astype(np.float64))


def test_flatten_with_end_before_start_is_a_clear_error():
    torch = _torch()
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(RuntimeError):
        torch.nn.Flatten(2, 1)(torch.tensor(x))
    with pytest.raises(ValueError, match=r"^Flatten\(start_dim=2, end_dim=1\): flatten: "
                                         r"start_dim 2 comes after end_dim 1"):
        nn.Flatten(2, 1)(mg.tensor(x))
