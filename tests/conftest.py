"""Shared test fixtures: where the shared data lives, and seeding."""
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
