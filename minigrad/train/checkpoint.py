"""Training checkpoints: the format, its version, atomic writes and reading back."""
import zipfile
import zlib

from ..io import load_tree, save_tree
from .divergence import _refuse_nonfinite_weights

_CHECKPOINT_FORMAT = "minigrad-training-checkpoint"
_CHECKPOINT_VERSION = 2  # 2: callback states keyed by Callback.state_key, not position


def save_checkpoint(path, run):
    """Write ``run``'s full state to ``path`` atomically (see :class:`ModelCheckpoint`).

    Weights holding NaN or infinity are never written: that raises
    :class:`TrainingDiverged` and leaves the file as it was.
    """
    state = run.state()
    _refuse_nonfinite_weights(run, state["model"], path)
    save_tree(path, state)
    run.last_checkpoint = str(path)
    return path


def load_checkpoint(path):
    """Read a training checkpoint as a dict (``"model"`` holds the state dict).

    A missing file is a ``FileNotFoundError``; a file that cannot be read as a
    training checkpoint (truncated, damaged, another format, written by a newer
    minigrad) is a ``ValueError`` naming it.
    """
    weights_hint = ("a weights file from Module.save cannot resume training; load it with "
                    "model.load(path) instead")
    try:
        state = load_tree(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, NotImplementedError,
            OSError) as error:  # NotImplementedError: zipfile, on a garbled header
        raise ValueError(f"cannot read {path}: the file is damaged (e.g. truncated) or not a "
                         f"minigrad training checkpoint ({type(error).__name__}: {error})"
                         ) from error
    except ValueError as error:  # an .npz, but not (or no longer) a whole checkpoint
        raise ValueError(f"{path} is not a minigrad training checkpoint or is damaged "
                         f"({error}); {weights_hint}") from error
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a minigrad training checkpoint; {weights_hint}")
    _checkpoint_version(state, path)
    return state


def _checkpoint_version(state, source):
    """The format version of a checkpoint ``state`` read from ``source`` (1 when it has
    none); a version this code does not know, e.g. from a newer minigrad, is a
    ValueError naming ``source``."""
    version = state.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{source}: unknown training checkpoint version {version!r}")
    if version > _CHECKPOINT_VERSION:
        raise ValueError(f"{source} was written by a newer minigrad (training checkpoint "
                         f"version {version}; this one reads up to {_CHECKPOINT_VERSION}); "
                         f"upgrade minigrad to resume it")
    return version
