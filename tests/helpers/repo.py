"""The repository's own files as tests reach them: its root, the demos, and the shared
image data beside the checkout (../shared/data), skipped where absent."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"


def shared_data(name):
    """Path of a folder in ../shared/data, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is not present")
    return path


def load_demo(name):
    """A script of ``demos/`` imported as a module (registered under its name, where
    dataclasses look their module up)."""
    path = ROOT / "demos" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
