"""Shared test fixtures: where the shared data lives, seeding, the kernel tables, an
install without matplotlib, and a quiet sweep."""
import builtins
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def rng():
    """A seeded NumPy generator, and minigrad's own streams seeded too."""
    mg.manual_seed(0)
    return np.random.default_rng(0)


def shared_data(name):
    """Path of a folder in ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is not present")
    return path


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


def quiet_sweep(space, out, trial_fn, **kwargs):
    """A ``minigrad.tune.Sweep`` of ``trial_fn`` into ``out`` that, unless told otherwise,
    runs in this process (one worker), prints nothing and draws no plots."""
    from minigrad.tune import Sweep  # imported here: most tests never sweep

    kwargs.setdefault("workers", 1)
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("plots", False)
    return Sweep(space, trial_fn, out, **kwargs)


def load_demo(name):
    """A script of ``demos/`` imported as a module (registered under its name, where
    dataclasses look their module up)."""
    import importlib.util
    import sys
    path = Path(__file__).resolve().parents[1] / "demos" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
