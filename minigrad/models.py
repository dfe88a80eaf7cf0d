"""Ready-made models, built in one place for demos, tests and benchmarks: the course
exercise's CNN, a small ResNet, a transformer classifier and an MLP."""
import numpy as np

from . import functional as F
from . import nn
from . import random as mg_random


def exercise_cnn(num_classes=4, activation="relu", size=80):
    """The bees-vs-wasps exercise's CNN for ``size`` x ``size`` RGB images.

    Conv(3->32) act pool, Conv(32->64) act pool, Conv(64->128) act pool, Flatten,
    Dense(128 * (size/8)^2 -> 128) act, Dense(128 -> num_classes); 3x3 kernels
    with padding 1, 2x2 max pooling. 1,732,292 parameters at 80x80 and 4 classes.
    ``activation`` is a name: "relu" (the exercise's default), "tanh", "sigmoid".
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 (three 2x2 poolings), got {size}")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    side = size // 2 // 2 // 2
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.activation(activation), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.activation(activation), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.activation(activation), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dense(128 * side * side, 128), nn.activation(activation),
        nn.Dense(128, num_classes),
    )


class BasicBlock(nn.Module):
    """A residual block: two 3x3 Conv-BN (the first with ``stride``), ReLU between
    and after the sum; the shortcut is a 1x1 Conv-BN projection where the shape
    changes (stride or channels), the identity otherwise (torchvision's BasicBlock)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def resnet_small(num_classes=4, in_channels=3, width=16):
    """A small ResNet for images (N, in_channels, H, W), H and W at least 4.

    Stem Conv(3x3, ``width``)-BN-ReLU; three residual blocks of ``width``,
    2 ``width`` and 4 ``width`` channels, the last two downsampling by stride 2 with
    a 1x1 projection shortcut; global average pooling; Linear to ``num_classes``.
    State-dict keys are those of the same structure in torch ("stem.0.weight",
    "blocks.1.shortcut.0.weight", "fc.bias", ...).
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    model = nn.Sequential()
    model.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
                               nn.BatchNorm2d(width), nn.ReLU())
    model.blocks = nn.Sequential(BasicBlock(width, width), BasicBlock(width, 2 * width, 2),
                                 BasicBlock(2 * width, 4 * width, 2))
    model.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    model.fc = nn.Linear(4 * width, num_classes)
    return model


class TransformerBlock(nn.Module):
    """A pre-norm transformer encoder block: x + attention(LayerNorm(x)), then
    x + MLP(LayerNorm(x)) with a GELU MLP of ``mlp_ratio`` times the width."""

    def __init__(self, dim, num_heads, mlp_ratio=4, dropout=0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.drop(self.attn(h, h, h, need_weights=False)[0])
        return x + self.drop(self.mlp(self.ln2(x)))


class TransformerClassifier(nn.Module):
    """Token sequences (N, L) of ints in [0, vocab) -> class scores (N, num_classes).

    Token embedding plus a learned position embedding (``max_len`` positions),
    ``depth`` pre-norm transformer blocks, a final LayerNorm, the mean over the
    sequence, and a Linear head.
    """

    def __init__(self, vocab, num_classes, dim=32, depth=2, num_heads=4, max_len=64,
                 dropout=0.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.max_len = int(max_len)
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(
            (0.02 * mg_random.generator().standard_normal((1, max_len, dim))).astype(np.float32))
        self.blocks = nn.ModuleList(TransformerBlock(dim, num_heads, dropout=dropout)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens):
        if tokens.ndim != 2 or tokens.shape[1] > self.max_len:
            raise ValueError(f"{type(self).__name__}: expected tokens (N, L) with L <= "
                             f"{self.max_len}, got shape {tuple(tokens.shape)}")
        x = self.embed(tokens) + self.pos[:, :tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(axis=1))


def transformer_classifier(vocab, num_classes, dim=32, depth=2, num_heads=4, max_len=64,
                           dropout=0.0):
    """A small transformer encoder classifier (see :class:`TransformerClassifier`)."""
    return TransformerClassifier(vocab, num_classes, dim, depth, num_heads, max_len, dropout)


def mlp(in_features, num_classes, hidden=(64, 64), dropout=0.1):
    """Linear-LayerNorm-GELU-Dropout for each width in ``hidden``, then a Linear head."""
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LayerNorm(h), nn.GELU(), nn.Dropout(dropout)]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, num_classes))


def exercise_cnn_memory(size=80, batch_size=32, num_classes=4, optimizer_slots=2):
    """An estimate, without building anything, of the memory that training
    :func:`exercise_cnn` takes: ``{"parameters", "weights", "activations", "total"}``
    (counts and bytes, float32).

    ``weights``: parameters, gradients and ``optimizer_slots`` arrays of optimizer
    state per parameter (Adam keeps 2). ``activations``: one batch's forward values
    kept for the backward pass, their gradients, and the largest im2col buffer of a
    convolution. A lower bound of what the allocator needs, good to an order of
    magnitude: enough to refuse a size that cannot fit before allocating it.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 (three 2x2 poolings), got {size}")
    side = size // 2 // 2 // 2
    blocks = ((3, 32, size), (32, 64, size // 2), (64, 128, size // 2 // 2))
    parameters = sum(c_in * c_out * 9 + c_out for c_in, c_out, _ in blocks)
    parameters += 128 * side * side * 128 + 128 + 128 * num_classes + num_classes
    per_image = 3 * size * size  # the input
    for _, c_out, s in blocks:
        per_image += 2 * c_out * s * s + c_out * (s // 2) ** 2  # conv, activation, pool
    per_image += 2 * 128 + num_classes
    im2col = max(c_in * 9 * s * s for c_in, _, s in blocks)
    activations = 4 * batch_size * (2 * per_image + im2col)
    weights = 4 * parameters * (2 + optimizer_slots)
    return {"parameters": parameters, "weights": weights, "activations": activations,
            "total": weights + activations}
