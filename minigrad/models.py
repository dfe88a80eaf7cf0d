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
