"""Shared test fixtures: seeding, the kernel tables, an install without matplotlib.
Plain helpers (paths, shared data, demos, sweeps) are in tests/helpers."""
import builtins

import numpy as np
import pytest

import minigrad as mg


@pytest.fixture
def rng():
    """A seeded NumPy generator, and minigrad's own streams seeded too."""
    mg.manual_seed(0)
    return np.random.default_rng(0)


@pytest.fixture(params=["reference", "fast"])
def kernel_mode(request, monkeypatch):
    """Run the test once per kernel table (``MINIGRAD_KERNELS``); the mode's name."""
    monkeypatch.setenv("MINIGRAD_KERNELS", request.param)
    return request.param


@pytest.fixture
def no_matplotlib(monkeypatch):
    """Make every ``import matplotlib...`` fail, as on an install without the plot extra."""
    real_import = builtins.__import__

    def refusing_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refusing_import)

