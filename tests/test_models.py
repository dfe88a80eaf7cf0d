"""The models beyond the exercise's CNN, each trained beside a torch twin from the same
initial weights on the same batches: per-step losses agree to float32 precision."""
from collections import OrderedDict

import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import models, optim

STEPS = 5


def sequence_task(n, length, vocab, seed):
    """Token sequences labelled 1 when token 1 occurs more often than token 2: the
    label needs every position, so attention has something to learn."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (n, length))
    labels = ((tokens == 1).sum(axis=1) > (tokens == 2).sum(axis=1)).astype(np.int64)
    return tokens, labels


def train_both(mine, theirs, batches, make_optimizers):
    """Per-step losses of both models trained on ``batches`` with cross-entropy.

    torch runs on one thread: on a small shared machine its thread pool, competing
    with everything else, made these few small steps take tens of seconds."""
    import torch
    from tests.helpers.torch_oracle import load_torch_state
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_both(mine, theirs, batches, make_optimizers, load_torch_state)
    finally:
        torch.set_num_threads(threads)


def _train_both(mine, theirs, batches, make_optimizers, load_torch_state):
    import torch
    load_torch_state(mine, theirs)
    opt, topt = make_optimizers(mine.parameters(), theirs.parameters())
    losses, expected = [], []
    for x, y in batches:
        loss = F.cross_entropy(mine(mg.tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        losses.append(loss.item())
        expected.append(tloss.item())
    return np.array(losses), np.array(expected)


def _torch_resnet(torch, num_classes, width):
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride=1):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                           tnn.BatchNorm2d(cout)) \
                if stride != 1 or cin != cout else tnn.Identity()

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    return tnn.Sequential(OrderedDict(
        stem=tnn.Sequential(tnn.Conv2d(3, width, 3, padding=1, bias=False),
                            tnn.BatchNorm2d(width), tnn.ReLU()),
        blocks=tnn.Sequential(Block(width, width), Block(width, 2 * width, 2),
                              Block(2 * width, 4 * width, 2)),
        pool=tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten()),
        fc=tnn.Linear(4 * width, num_classes)))


def test_resnet_small_trains_as_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = _torch_resnet(torch, 3, 8)
    mine = models.resnet_small(3, width=8)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((6, 3, 12, 12)).astype(np.float32), rng.integers(0, 3, 6))
               for _ in range(STEPS)]
    losses, expected = train_both(
        mine, theirs, batches,
        lambda a, b: (optim.SGD(a, lr=0.1, momentum=0.9), torch.optim.SGD(b, lr=0.1,
                                                                          momentum=0.9)))
    np.testing.assert_allclose(losses, expected, rtol=2e-5)
    assert losses[-1] < losses[0]
    np.testing.assert_allclose(mine.blocks[2].bn2.running_var,
                               theirs.blocks[2].bn2.running_var.numpy(), rtol=1e-4)


def _torch_transformer(torch, vocab, num_classes, dim, depth, heads, max_len):
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = tnn.LayerNorm(dim)
            self.attn = tnn.MultiheadAttention(dim, heads, batch_first=True)
            self.ln2 = tnn.LayerNorm(dim)
            self.mlp = tnn.Sequential(tnn.Linear(dim, 4 * dim), tnn.GELU(),
                                      tnn.Linear(4 * dim, dim))
            self.drop = tnn.Dropout(0.0)

        def forward(self, x):
            h = self.ln1(x)
            x = x + self.drop(self.attn(h, h, h, need_weights=False)[0])
            return x + self.drop(self.mlp(self.ln2(x)))

    class Classifier(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embed = tnn.Embedding(vocab, dim)
            self.pos = tnn.Parameter(torch.zeros(1, max_len, dim))
            self.blocks = tnn.ModuleList(Block() for _ in range(depth))
            self.norm = tnn.LayerNorm(dim)
            self.head = tnn.Linear(dim, num_classes)

        def forward(self, tokens):
            x = self.embed(tokens) + self.pos[:, :tokens.shape[1]]
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x).mean(dim=1))

    return Classifier()


def test_transformer_classifier_trains_as_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    vocab, length = 6, 10
    theirs = _torch_transformer(torch, vocab, 2, 16, 2, 4, 12)
    mine = models.transformer_classifier(vocab, 2, dim=16, depth=2, num_heads=4, max_len=12)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    batches = [sequence_task(16, length, vocab, seed) for seed in range(STEPS)]
    losses, expected = train_both(
        mine, theirs, batches,
        lambda a, b: (optim.Adam(a, lr=3e-3), torch.optim.Adam(b, lr=3e-3)))
    np.testing.assert_allclose(losses, expected, rtol=2e-5)


def test_transformer_classifier_learns_the_sequence_task():
    mg.manual_seed(0)
    model = models.transformer_classifier(6, 2, dim=16, depth=1, num_heads=2, max_len=12)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    tokens, labels = sequence_task(256, 10, 6, seed=1)
    for epoch in range(12):
        for i in range(0, 256, 32):
            loss = F.cross_entropy(model(mg.tensor(tokens[i:i + 32])), labels[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
    test_tokens, test_labels = sequence_task(256, 10, 6, seed=2)
    model.eval()
    with mg.no_grad():
        accuracy = (model(mg.tensor(test_tokens)).numpy().argmax(axis=1) == test_labels).mean()
    assert accuracy > 0.8  # the majority class is about 0.6


def test_mlp_trains_as_torch_and_uses_dropout_when_asked():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tnn = torch.nn
    theirs = tnn.Sequential(tnn.Linear(5, 16), tnn.LayerNorm(16), tnn.GELU(), tnn.Dropout(0.0),
                            tnn.Linear(16, 12), tnn.LayerNorm(12), tnn.GELU(), tnn.Dropout(0.0),
                            tnn.Linear(12, 3))
    mine = models.mlp(5, 3, hidden=(16, 12), dropout=0.0)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 5)) * 2
    batches = []
    for _ in range(STEPS):
        y = rng.integers(0, 3, 32)
        batches.append(((centres[y] + rng.standard_normal((32, 5))).astype(np.float32), y))
    losses, expected = train_both(
        mine, theirs, batches,
        lambda a, b: (optim.AdamW(a, lr=1e-2, amsgrad=True),
                      torch.optim.AdamW(b, lr=1e-2, amsgrad=True)))
    np.testing.assert_allclose(losses, expected, rtol=2e-5)
    dropping = models.mlp(5, 3, hidden=8, dropout=0.5)
    x = mg.tensor(np.ones((4, 5), np.float32))
    assert not np.allclose(dropping(x).numpy(), dropping(x).numpy())
    dropping.eval()
    np.testing.assert_array_equal(dropping(x).numpy(), dropping(x).numpy())


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="at least 2 classes"):
        models.resnet_small(1)
    with pytest.raises(ValueError, match="L <= 8"):
        models.transformer_classifier(5, 2, max_len=8)(mg.tensor(np.zeros((1, 9), int)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        models.resnet_small(2).pool(mg.tensor(np.ones((2, 3))))
