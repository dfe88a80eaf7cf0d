"""The 32x32 CIFAR protocol end to end: minigrad's demo against the same in PyTorch.

    python benchmarks/cifar_protocol.py [--data ../shared/data/cifar10] [--epochs 6]
                                        [--rounds 1] [--json PATH]

minigrad: ``demos/bees_vs_wasps.py --data DATA --size 32 --epochs 6 --seed 0`` as a
fresh process (data loading, training, a validation pass per epoch, progress
output, the final evaluation and its files). PyTorch: a fresh process with the same
protocol: the same images and split (decoded by minigrad's ``load_image_folder``,
with the same on-disk cache, so loading costs both alike), the same normalisation,
the exercise CNN for 32x32 images and the data's classes, Adam at 1e-3, batch 32,
shuffled every epoch, a validation pass and a progress line per epoch, and a final
evaluation. Wall seconds are taken around each whole process, minigrad and PyTorch
alternating ``--rounds`` times; ``ratio`` is minigrad / PyTorch (median seconds).
Prints one JSON object.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _common import ROOT, cpu_model, emit_json, torch_exercise_cnn  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    parser.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def torch_worker(args):
    """The protocol in PyTorch; prints a JSON line with the accuracy at the end."""
    import numpy as np
    import torch
    from minigrad.data import load_image_folder
    torch.manual_seed(args.seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                          else os.cpu_count())
    train_set, val_set = load_image_folder(args.data, size=args.size, seed=args.seed,
                                           cache=True)

    def batches(dataset, order):
        scale, shift = dataset._scale, dataset._shift  # the same normalisation
        for lo in range(0, len(order), args.batch_size):
            idx = order[lo:lo + args.batch_size]
            x = dataset.images[idx].astype(np.float32) * scale - shift
            yield (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
                   torch.from_numpy(dataset.labels[idx]))

    def evaluate(model):
        model.eval()
        correct, total, loss = 0, 0, 0.0
        with torch.no_grad():
            for x, y in batches(val_set, np.arange(len(val_set))):
                logits = model(x)
                loss += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(1) == y).sum())
                total += len(y)
        model.train()
        return loss / total, correct / total

    model = torch_exercise_cnn(torch.nn, args.size, len(train_set.classes))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(args.seed)
    for epoch in range(args.epochs):
        start = time.perf_counter()
        total = 0.0
        for x, y in batches(train_set, rng.permutation(len(train_set))):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            total += float(loss) * len(y)
        val_loss, val_acc = evaluate(model)
        print(f"epoch {epoch + 1}/{args.epochs} loss {total / len(train_set):.4f} "
              f"val_loss {val_loss:.4f} val_accuracy {val_acc:.4f} "
              f"({time.perf_counter() - start:.1f}s)", file=sys.stderr, flush=True)
    val_loss, val_acc = evaluate(model)
    print(json.dumps({"val_accuracy": val_acc, "val_loss": val_loss}))


def timed(command, env):
    """Wall seconds of a whole process and its last stdout line (or None)."""
    start = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr[-2000:]}")
    return seconds, out


def run(args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    protocol = ["--data", args.data, "--size", str(args.size), "--epochs", str(args.epochs),
                "--seed", str(args.seed), "--batch-size", str(args.batch_size)]
    ours, theirs = [], []
    result = {"benchmark": "CIFAR protocol end to end", "cpu_model": cpu_model(),
              "cpu_count": os.cpu_count(), "protocol": protocol, "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="cifar-protocol-") as tmp:
        for _ in range(args.rounds):
            out_dir = Path(tmp) / "minigrad"
            seconds, _ = timed([sys.executable, str(ROOT / "demos" / "bees_vs_wasps.py"),
                                *protocol, "--out", str(out_dir)], env)
            record = json.loads((out_dir / "result.json").read_text())
            ours.append({"wall_s": round(seconds, 2), "val_accuracy": record["val_accuracy"],
                         "demo_seconds": round(record["seconds"], 2)})
            seconds, out = timed([sys.executable, str(Path(__file__).resolve()),
                                  "--worker", "torch", *protocol], env)
            record = json.loads(out.stdout.strip().splitlines()[-1])
            theirs.append({"wall_s": round(seconds, 2), "val_accuracy": record["val_accuracy"]})
    result["minigrad"] = ours
    result["torch"] = theirs
    result["ratio"] = round(statistics.median(r["wall_s"] for r in ours)
                            / statistics.median(r["wall_s"] for r in theirs), 3)
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.worker == "torch":
        return torch_worker(args)
    result = run(args)
    emit_json(result, args.json)


if __name__ == "__main__":
    main()
