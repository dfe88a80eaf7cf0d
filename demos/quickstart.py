"""Quickstart: train a small classifier on data this script makes itself.

Three interleaved spirals in 2-D, a two-hidden-layer network, Adam, mini-batches of 32.
The loss falls and the accuracy rises epoch by epoch.

    python demos/quickstart.py [--epochs 30] [--device cpu]
"""
import argparse

import numpy as np

import minigrad as mg
from minigrad import losses, nn, optim


def make_spirals(points_per_class=200, classes=3, noise=0.2, seed=0):
    """Points on ``classes`` interleaved spiral arms, labelled by arm."""
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1.0, points_per_class), classes)
    label = np.repeat(np.arange(classes), points_per_class)
    angle = label * 2 * np.pi / classes + radius * 4 + rng.normal(0, noise, radius.size)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x.astype(np.float32), label


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    mg.manual_seed(args.seed)
    x, y = make_spirals(seed=args.seed)
    model = nn.Sequential(nn.Dense(2, 64), nn.ReLU(), nn.Dense(64, 64), nn.ReLU(),
                          nn.Dense(64, 3)).to(args.device)
    model.summary((1, 2))
    opt = optim.get("adam", model.parameters(), lr=args.lr)
    loss_fn = losses.get("cross_entropy")
    rng = np.random.default_rng(args.seed)
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x))
        total, correct = 0.0, 0
        for start in range(0, len(x), 32):
            batch = order[start:start + 32]
            xb = mg.as_tensor(x[batch], device=args.device)
            yb = mg.as_tensor(y[batch], device=args.device)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            correct += int((logits.numpy().argmax(1) == y[batch]).sum())
        if epoch == 1 or epoch % 5 == 0:
            print(f"epoch {epoch:3d}  loss {total / len(x):.4f}  accuracy {correct / len(x):.3f}")
    return total / len(x), correct / len(x)


if __name__ == "__main__":
    main()
