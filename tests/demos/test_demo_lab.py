"""demos/optimization_lab.py end to end at --quick size: figures written, summaries printed.

The demo is loaded from its file and run in-process (headless: the lab draws with
matplotlib's object API, no pyplot, no display). The numbers behind the figures are
asserted in test_lab.py and test_lr_finder.py; here each subcommand must write its
figures as real, non-trivial PNG/GIF files and print what they show.
"""
import importlib.util

import pytest

from tests.helpers.repo import ROOT

# Slow (still run in CI): draws the lab's figures and animations.
pytestmark = pytest.mark.slow

pytest.importorskip("matplotlib")

DEMO = ROOT / "demos" / "optimization_lab.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_BYTES = 20_000  # a blank 1000-pixel-wide figure is far smaller than any of these


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("optimization_lab", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path):
    assert path.is_file(), f"{path.name} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert len(data) > MIN_BYTES, f"{path.name} is only {len(data)} bytes"


def assert_gif(path, min_frames=10):
    from PIL import Image
    assert path.read_bytes()[:6] == b"GIF89a", f"{path.name} is not a GIF"
    with Image.open(path) as image:
        assert image.n_frames >= min_frames


def test_landscape_writes_paths_regimes_schedules_and_animations(demo, tmp_path, capsys):
    demo.main(["landscape", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    for name in ("bowl", "rosenbrock", "saddle", "himmelblau"):
        assert_png(tmp_path / f"landscape_{name}.png")
        assert f"landscape_{name}.png" in out
    assert_png(tmp_path / "lr_regimes.png")
    assert_png(tmp_path / "lr_schedules.png")
    assert_gif(tmp_path / "landscape_rosenbrock.gif")
    assert_gif(tmp_path / "landscape_saddle.gif")
    assert "too large    lr=0.6    diverged at step" in out
    for optimizer in ("sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"):
        assert f"    {optimizer:9s} lr=" in out
    for schedule in ("constant", "step decay", "exponential", "cosine"):
        assert f"    {schedule:12s} mean distance" in out


def test_batch_writes_the_comparison(demo, tmp_path, capsys):
    demo.main(["batch", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert_png(tmp_path / "batch_sizes.png")
    assert "batch  128:    1 steps/epoch" in out
    assert "batch   32:    4 steps/epoch" in out
    assert "batch    1:  128 steps/epoch" in out
    assert "ms/epoch" in out


def test_losses_writes_curves_fits_and_classifiers(demo, tmp_path, capsys):
    demo.main(["losses", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    for name in ("loss_curves", "robust_regression", "classifiers"):
        assert_png(tmp_path / f"{name}.png")
    for loss in ("mse", "huber", "mae"):
        assert f"    {loss:6s} y = " in out
    assert "hinge    accuracy" in out and "logistic accuracy" in out
    assert "is the logistic loss (largest gap" in out


def test_lr_find_on_the_exercise_cnn(demo, tmp_path, capsys):
    demo.main(["lr-find", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert_png(tmp_path / "lr_finder.png")
    assert "Exercise CNN" in out and "16x16 input" in out
    assert "steps in" in out
    # Its words agree with its curve: a suggestion only where the loss clearly fell.
    assert ("suggested lr" in out) != ("no lr can be read off this run" in out)


def test_lr_find_runs_the_exercise_cnn(demo):
    model = demo.exercise_cnn(4, "relu", 80)
    shapes = {name: value.shape for name, value in model.state_dict().items()}
    assert shapes["0.weight"] == (32, 3, 3, 3)
    assert shapes["6.weight"] == (128, 64, 3, 3)
    assert shapes["10.weight"] == (128, 12800)
    assert shapes["12.weight"] == (4, 128)
    assert demo.exercise_cnn(4, "relu", 32).state_dict()["10.weight"].shape == (128, 2048)


def test_unknown_command_is_refused(demo, capsys):
    with pytest.raises(SystemExit):
        demo.main(["sweep"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--size", "12"], "--size must be at least 16"),
    (["--steps", "1"], "--steps must be at least 2"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--start-lr", "1", "--end-lr", "0.1"], "need 0 < --start-lr < --end-lr"),
])
def test_lr_find_refuses_settings_it_cannot_run_with_a_usage_error(demo, tmp_path, capsys,
                                                                    argv, message):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["lr-find", "--quick", "--out", str(tmp_path)] + argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before any work
