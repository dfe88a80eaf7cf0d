"""Where minigrad's kernels come from: the top-level ``kernels/`` folder of a source
checkout, or ``minigrad.kernels`` where minigrad is installed.

An install puts the repository's ``kernels/`` folder under minigrad's namespace
(``package_dir`` in setup.py), so it cannot clash with an unrelated top-level package
named ``kernels``. Beside a checkout's (or an editable install's) ``minigrad/`` the
``kernels/`` folder is always imported as ``kernels``, whatever the working
directory: minigrad and the tests and benchmarks that import ``kernels`` share one
copy of each module, and Numba's on-disk cache (kept beside the sources, keyed by
file, not by module name) never sees the same file under two names. ``kernels``
imports itself relatively, so it works under either name.
"""
import importlib
import importlib.util
import sys
from pathlib import Path


def _package_name():
    checkout = (Path(__file__).resolve().parent.parent / "kernels").resolve()
    if not (checkout / "__init__.py").is_file():
        return "minigrad.kernels"  # installed
    # Asked without importing: a foreign "kernels" must not run on our behalf.
    spec = importlib.util.find_spec("kernels")
    if spec is None:  # an editable install run from elsewhere: load the checkout's by path
        spec = importlib.util.spec_from_file_location(
            "kernels", checkout / "__init__.py", submodule_search_locations=[str(checkout)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["kernels"] = module
        spec.loader.exec_module(module)
        return "kernels"
    if spec.origin is not None and Path(spec.origin).resolve().parent == checkout:
        return "kernels"
    # An unrelated top-level "kernels" shadows the checkout's: use minigrad's name for it.
    return "minigrad.kernels"


#: The import name of the kernels package in this installation.
PACKAGE = _package_name()


def kernel_module(name):
    """The kernels' sub-module ``name`` (``"reference.activation"``, ``"cuda.gemm"``)."""
    return importlib.import_module(f"{PACKAGE}.{name}")
