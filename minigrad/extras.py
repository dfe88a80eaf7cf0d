"""Optional dependencies: import one, or say which extra of minigrad installs it."""
import importlib


def require(module, what, extra):
    """``import module``; if it is missing, an ImportError saying that ``what`` needs
    it and ``pip install 'minigrad[extra]'`` gets it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs {module.split('.')[0]}, which is not installed "
                          f"({exc}); install it with: pip install 'minigrad[{extra}]'") from None
