"""demos/bees_vs_wasps.ipynb: committed without outputs, and executed end to end on
small settings by a real Jupyter kernel (nbclient + ipykernel)."""
import csv
import json
import os

import pytest

from tests.helpers.repo import ROOT

# Slow (still run in CI): starts a Jupyter kernel.
pytestmark = pytest.mark.slow

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = ROOT / "demos" / "bees_vs_wasps.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _execute(nb, monkeypatch, timeout=120):
    """Run ``nb`` in a fresh kernel from demos/, importing this checkout's minigrad."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT / "demos")}})
    client.execute()
    return nb


def _outputs(cell):
    return [(output.get("output_type"), output) for output in cell.get("outputs", [])]


def test_the_committed_notebook_holds_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert [c for c in code if "parameters" in c.metadata.get("tags", [])]


def test_the_notebook_runs_end_to_end_on_small_settings(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    out = tmp_path / "out"
    parameters.source = (f"DATA = None\nSIZE = 16\nSYNTHETIC_IMAGES = 60\nEPOCHS = 2\n"
                         f"BATCH_SIZE = 24\nLR = 1e-3\nSWEEP_LRS = [1e-3, 3e-3]\n"
                         f"SWEEP_EPOCHS = 1\nOUT = {str(out)!r}\nSEED = 1\n")
    _execute(nb, monkeypatch)
    outputs = [o for cell in nb.cells for o in _outputs(cell)]
    assert not [o for kind, o in outputs if kind == "error"]
    images = [o for _, o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4  # curves, confusion matrix, the sweep's two plots
    training = next(c for c in nb.cells if "model.fit(" in c.source and "def trial" not in c.source)
    kinds = {mime for _, o in _outputs(training) for mime in o.get("data", {})}
    try:
        import ipywidgets  # noqa: F401
        assert WIDGET in kinds  # the progress bars are notebook widgets
    except ImportError:
        pass
    text = "".join(o.get("text", "") for cell in nb.cells for _, o in _outputs(cell))
    assert "Epoch 2/2" in text and "validation accuracy" in text
    with open(out / "log.csv", newline="") as f:
        assert [row[0] for row in csv.reader(f)] == ["epoch", "0", "1"]
    results = json.loads((out / "sweep" / "results.json").read_text())
    assert len(results["trials"]) == 2


def test_without_ipywidgets_progress_falls_back_to_text(tmp_path, monkeypatch):
    pytest.importorskip("tqdm")
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook(cells=[
        new_code_cell("import sys\nsys.modules['ipywidgets'] = None  # as if not installed"),
        new_code_cell("import numpy as np\nfrom minigrad import nn\n"
                      "model = nn.Sequential(nn.Dense(3)).compile(lr=0.1)\n"
                      "x = np.eye(3, dtype=np.float32).repeat(4, 0)\n"
                      "history = model.fit(x, np.arange(12) % 3, epochs=2, batch_size=4)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})
    _execute(nb, monkeypatch, timeout=60)
    outputs = _outputs(nb.cells[1])
    assert not [o for kind, o in outputs if kind == "error"]
    assert not [o for _, o in outputs if WIDGET in o.get("data", {})]
    assert "Epoch 2/2" in "".join(o.get("text", "") for _, o in outputs)
