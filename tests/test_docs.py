"""The API reference: the README's pdoc command builds it from the docstrings."""
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

# Slow (still run in CI): builds the API reference with pdoc in a subprocess.
pytestmark = pytest.mark.slow

pytest.importorskip("pdoc")

ROOT = Path(__file__).resolve().parents[1]


def _readme_command():
    lines = [line for line in (ROOT / "README.md").read_text().splitlines()
             if line.startswith("python -m pdoc ")]
    assert len(lines) == 1, "the README gives one pdoc command"
    return shlex.split(lines[0])


def test_the_readmes_pdoc_command_builds_the_api_reference(tmp_path):
    command = _readme_command()
    assert command[-2:] == ["-o", "docs/api"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, *command[1:-1], str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Error importing" not in done.stderr
    pages = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.html")}
    for page in ("index.html", "minigrad.html", "minigrad/nn.html", "minigrad/train.html",
                 "minigrad/train/keras.html", "minigrad/data/transforms.html",
                 "minigrad/onnx.html", "minigrad/tune.html", "minigrad/plot.html"):
        assert page in pages
    assert "CSVLogger" in (tmp_path / "minigrad" / "train.html").read_text()
    assert "RandomResizedCrop" in (tmp_path / "minigrad/data/transforms.html").read_text()
