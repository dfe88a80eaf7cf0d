"""Ready-made models: the course exercise's CNN, built in one place for demos, tests and benchmarks."""
from . import nn


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
