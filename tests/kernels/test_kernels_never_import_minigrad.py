"""kernels/ never imports minigrad (DESIGN.md): the kernels know arrays, not Tensors, and an
install maps kernels/ to minigrad.kernels, where an import of minigrad would be circular.

Read statically (every ``import``, relative imports that climb out of kernels/, and
``import_module``/``__import__`` of a literal name), then confirmed by importing every
kernels module in a fresh interpreter and finding no minigrad module loaded."""
import ast
import os
import subprocess
import sys

from tests.helpers.repo import ROOT

KERNELS = ROOT / "kernels"


def _is_minigrad(name):
    return name == "minigrad" or name.startswith("minigrad.")


def minigrad_imports(path, root=KERNELS):
    """``(line, what)`` for each way ``path`` (a file under ``root``, kernels/) reaches minigrad."""
    depth = len(path.relative_to(root).parts)  # kernels/x.py: 1; kernels/cpu/x.py: 2
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if _is_minigrad(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_minigrad(node.module or ""):
                found.append((node.lineno, f"from {node.module} import ..."))
            elif node.level > depth:  # above kernels/: minigrad itself once installed
                found.append((node.lineno, f"from {'.' * node.level}{node.module or ''} import ..."))
        elif isinstance(node, ast.Call) and node.args:
            func, first = node.func, node.args[0]
            called = getattr(func, "attr", getattr(func, "id", None))
            if (called in ("import_module", "__import__") and isinstance(first, ast.Constant)
                    and isinstance(first.value, str) and _is_minigrad(first.value)):
                found.append((node.lineno, f"{called}({first.value!r})"))
    return found


def test_the_scan_sees_each_way_of_importing_minigrad(tmp_path):
    """The scan itself: each spelling is caught, relative imports inside kernels/ are not."""
    fake = tmp_path / "kernels"
    (fake / "cpu").mkdir(parents=True)
    source = ("import numpy as np\nfrom . import conv\nfrom .. import _xp\n"
              "import minigrad.tensor\nfrom minigrad import backend\nfrom ... import tensor\n"
              "import importlib\nimportlib.import_module('minigrad.functional')\n")
    (fake / "cpu" / "bad.py").write_text(source)
    assert [line for line, _ in minigrad_imports(fake / "cpu" / "bad.py", fake)] == [4, 5, 6, 8]


def test_no_kernels_source_imports_minigrad():
    paths = sorted(KERNELS.rglob("*.py"))
    assert len(paths) > 20  # the scan found the package
    offenders = [f"{path.relative_to(ROOT)}:{line}: {what}"
                 for path in paths for line, what in minigrad_imports(path)]
    assert not offenders, "kernels/ must never import minigrad:\n" + "\n".join(offenders)


def test_importing_every_kernels_module_loads_no_minigrad_module():
    script = ("import importlib, pkgutil, sys, kernels\n"
              "for m in pkgutil.walk_packages(kernels.__path__, 'kernels.'):\n"
              "    importlib.import_module(m.name)\n"
              "print(sorted(n for n in sys.modules if n.split('.')[0] == 'minigrad'))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"importing kernels/ loaded {done.stdout.strip()}"
