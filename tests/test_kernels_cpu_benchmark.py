"""The training-step benchmark runs end to end on a tiny setting (no timing asserted)."""
import importlib.util
import json
from pathlib import Path

import pytest

# The benchmark reports Numba's version and thread settings.
pytest.importorskip("numba", reason="Numba (a declared dependency) is not installed")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("train_step_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_reports_every_section(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MINIGRAD_KERNELS", raising=False)
    out = tmp_path / "result.json"
    load_benchmark().main(["--batch-size", "2", "--steps", "1", "--rounds", "1",
                           "--warmup", "0", "--kernels", "both", "--no-torch",
                           "--no-first-step", "--json", str(out)])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    fast = result["minigrad"]["fast"]
    assert fast["train_step_ms"] > 0 and fast["forward_ms"] > 0
    assert list(fast["layers"])[:3] == ["conv1", "relu1", "pool1"]
    assert "cross_entropy" in fast["layers"] and fast["adam_step_ms"] > 0
    assert fast["peak_rss_mib"] > 0
    assert result["minigrad"]["reference"]["train_step_ms"] > 0
    assert result["speedup_fast_over_reference"]["train_step"] > 0
    assert result["environment"]["threads"] >= 1
    assert "torch" not in result and "first_step" not in result
