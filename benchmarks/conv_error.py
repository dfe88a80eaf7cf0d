"""Float32 error of the CPU convolutions against float64, on the exercise's layers.

    python benchmarks/conv_error.py [--batch-size 8] [--json PATH]

For each 3x3 convolution of the exercise CNN at 80x80 (input shapes and He-scaled
weights as in training, ReLU inputs for the second and third layer), forward and
the three gradients are computed in float32 by the reference (im2col, NumPy), the
CPU kernels' im2col path and their Winograd F(2x2, 3x3) path, and compared with the
reference in float64 on the same (float32-representable) numbers. Reported per
output: the largest absolute error divided by the largest magnitude of the exact
result (``max_rel``), and the root-mean-square error over the RMS of the exact
result (``rms_rel``). Prints one JSON object.
"""
import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

from _common import cpu_model, emit_json  # noqa: E402

# (name, channels in, channels out, image side) of the exercise's convolutions
LAYERS = [("conv1", 3, 32, 80), ("conv2", 32, 64, 40), ("conv3", 64, 128, 20)]


def errors(got, exact):
    got, exact = np.asarray(got, np.float64), np.asarray(exact, np.float64)
    diff = got - exact
    return {"max_rel": float(np.abs(diff).max() / np.abs(exact).max()),
            "rms_rel": float(np.sqrt(np.mean(diff ** 2)) / np.sqrt(np.mean(exact ** 2)))}


def measure(batch_size, seed=0):
    import kernels.reference as ref
    from kernels.cpu import conv
    rng = np.random.default_rng(seed)
    out = {}
    for name, c, o, side in LAYERS:
        x = rng.standard_normal((batch_size, c, side, side)).astype(np.float32)
        if c > 3:
            x = np.maximum(x, 0)  # what a ReLU hands on
        w = (rng.standard_normal((o, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
        b = (0.1 * rng.standard_normal(o)).astype(np.float32)
        gy = rng.standard_normal((batch_size, o, side, side)).astype(np.float32)
        args = ((1, 1), (1, 1))
        y64, cache64 = ref.KERNELS["conv2d_forward"](x.astype(np.float64), w.astype(np.float64),
                                                     b.astype(np.float64), *args)
        exact = [y64, *ref.KERNELS["conv2d_backward"](gy.astype(np.float64), cache64, True)]
        rows = {}
        for path in ("reference_f32", "im2col", "winograd"):
            if path == "reference_f32":
                y, cache = ref.KERNELS["conv2d_forward"](x, w, b, *args)
                grads = ref.KERNELS["conv2d_backward"](gy, cache, True)
            else:
                os.environ["MINIGRAD_CONV_ALGO"] = path
                y, cache = conv.conv2d_forward(x, w, b, *args)
                grads = conv.conv2d_backward(gy, cache, True)
            rows[path] = {part: errors(got, want) for part, got, want in
                          zip(("y", "grad_x", "grad_w", "grad_b"), [y, *grads], exact)}
        out[name] = rows
    os.environ.pop("MINIGRAD_CONV_ALGO", None)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = {"benchmark": "float32 convolution error against float64",
              "cpu_model": cpu_model(), "batch_size": args.batch_size,
              "layers": measure(args.batch_size)}
    emit_json(result, args.json)


if __name__ == "__main__":
    main()
