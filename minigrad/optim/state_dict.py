"""Saving and loading an optimizer's state, in PyTorch's ``state_dict`` layout.

:func:`optimizer_state` and :func:`load_optimizer_state` are what
``Optimizer.state_dict``/``load_state_dict`` run. Most of this module is about
reading dicts that another framework or optimizer wrote: PyTorch's group flags,
another optimizer's hyper-parameters or state entries (refused, naming the
optimizer they belong to), checkpoint arrays where Python values are meant.
"""
import functools
import inspect
import numbers
import warnings

import numpy as np

from .. import backend

# Group entries that describe the group rather than tune the update: saved with it,
# but never restored over the parameters this optimizer was built with.
_STRUCTURAL_KEYS = ("params", "param_names")
# PyTorch's group flags that choose how torch computes a step, not what it computes
# (name -> whether None is a value): taken from a torch-style group and ignored.
TORCH_FLAGS = {"foreach": True, "fused": True, "capturable": False, "differentiable": False}
# Other group keys with a known owner: a scheduler's record of the starting lr.
_KNOWN_GROUP_EXTRAS = ("initial_lr",)


def optimizer_state(optimizer):
    """``optimizer``'s state, shaped like PyTorch's, with NumPy copies of the buffers
    (see ``Optimizer.state_dict``)."""
    index = {}
    groups = []
    for group in optimizer.param_groups:
        saved = {name: value for name, value in group.items() if name != "params"}
        saved["params"] = [index.setdefault(p, len(index)) for p in group["params"]]
        groups.append(saved)
    state = {}
    for group in optimizer.param_groups:
        for param in group["params"]:
            if param in optimizer.state:
                state[index[param]] = {
                    name: _host_copy(value) for name, value in optimizer.state[param].items()}
    return {"state": state, "param_groups": groups}


def load_optimizer_state(optimizer, state_dict):
    """Restore ``state_dict`` into ``optimizer`` (see ``Optimizer.load_state_dict``):
    everything is checked before anything changes."""
    name = type(optimizer).__name__
    for key in ("state", "param_groups"):
        if key not in state_dict:
            raise ValueError(f"{name}.load_state_dict: missing key {key!r}")
    new_groups, param_of = _loaded_groups(optimizer, list(state_dict["param_groups"]))
    new_state = _loaded_state(optimizer, state_dict["state"], param_of)
    for group, new_group in zip(optimizer.param_groups, new_groups):
        group.update(new_group)  # in place: code holding a group dict sees the change
    optimizer.state = new_state


def _loaded_groups(optimizer, saved_groups):
    """(the checked new groups, saved parameter index -> this optimizer's parameter)."""
    cls, name = type(optimizer), type(optimizer).__name__
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError(f"{name}.load_state_dict: the state has {len(saved_groups)} "
                         f"parameter group(s), this optimizer has {len(optimizer.param_groups)}")
    own = hyperparameter_names(cls)
    param_of = {}
    new_groups = []
    for g, (saved, group) in enumerate(zip(saved_groups, optimizer.param_groups)):
        foreign = _foreign_keys(saved, hyperparameter_names, own | set(optimizer.defaults))
        if foreign:
            raise ValueError(
                f"{name}.load_state_dict: group {g} of the state has hyper-parameter(s) "
                f"{foreign} that {name} does not have (its own: "
                f"{', '.join(sorted(optimizer.defaults))}); is it another optimizer's "
                "state dict?")
        saved_ids = [int(i) for i in host_value(saved["params"])]
        if len(saved_ids) != len(group["params"]):
            raise ValueError(f"{name}.load_state_dict: group {g} has {len(saved_ids)} "
                             f"parameter(s) in the state, {len(group['params'])} here")
        param_of.update(zip(saved_ids, group["params"]))
        new_group = dict(group)
        unknown = sorted(str(key) for key, value in saved.items() if key not in group
                         and key not in own and key not in _STRUCTURAL_KEYS
                         and key not in TORCH_FLAGS and key not in _KNOWN_GROUP_EXTRAS
                         and _looks_numeric(value))
        # Loaded, as PyTorch does; but a number under a name this optimizer does not
        # use is most likely a misspelt setting ("betass"), which should not hide.
        if unknown:
            # stacklevel: this function, load_optimizer_state, load_state_dict, its caller
            warnings.warn(f"{name}.load_state_dict: group {g} of the state has key(s) "
                          f"{unknown} that {name} does not use; they are kept in the "
                          "group", stacklevel=4)
        for key, value in saved.items():
            if key not in _STRUCTURAL_KEYS and key not in cls._fixed_hyperparameters:
                new_group[key] = host_value(value, like=group.get(key))
        optimizer._validate_group(new_group)
        new_groups.append(new_group)
    return new_groups, param_of


def _loaded_state(optimizer, saved_state, param_of):
    """The per-parameter state of ``saved_state``, checked, on the parameters' devices."""
    cls, name = type(optimizer), type(optimizer).__name__
    own = state_entry_names(cls)
    new_state = {}
    for index, saved in saved_state.items():
        param = param_of.get(int(index))
        if param is None:
            raise ValueError(f"{name}.load_state_dict: state for parameter {index}, "
                             "which is in no parameter group")
        # Only this optimizer's own entries: one it does not keep means another
        # optimizer's state (torch's Adadelta, NAdam, ...), never something to carry.
        unknown = sorted(set(map(str, saved)) - own)
        missing = [key for key in cls._required_state if key not in saved]
        if unknown or missing:
            foreign = _foreign_keys(saved, state_entry_names, own)
            raise ValueError(
                f"{name}.load_state_dict: the state of parameter {index} has entries "
                f"{sorted(map(str, saved))}; {name} keeps "
                f"{', '.join(cls._required_state + cls._optional_state) or 'none'}"
                + (f" (another optimizer's: {foreign})" if foreign else
                   f" (not {name}'s: {unknown})" if unknown else "")
                + (f" (missing: {missing})" if missing else "")
                + "; is it another optimizer's state dict?")
        new_state[param] = {key: _restore_state_value(value, param, key, index, name)
                            for key, value in saved.items()}
    return new_state


def _foreign_keys(saved, names_of, own):
    """Keys of ``saved`` that ``names_of`` gives a registered optimizer class and
    that are not in ``own``, each with the classes that have it (``"momentum (SGD,
    RMSprop)"``), sorted; empty if none."""
    from . import OPTIMIZERS  # the registry's module imports the optimizers, which import this
    owners = {}
    for cls in OPTIMIZERS.values():
        for key in names_of(cls) - own:
            if key in saved:
                owners.setdefault(key, []).append(cls.__name__)
    return [f"{key} ({', '.join(owners[key])})" for key in sorted(owners)]


@functools.cache
def hyperparameter_names(cls):
    """What a group of ``cls`` may hold as hyper-parameters: the keywords its
    constructor takes besides ``params``, as PyTorch saves them (``foreach`` too),
    and the ones it passes its base class itself (AdamW's decoupled_weight_decay)."""
    taken = {name for name, parameter in inspect.signature(cls).parameters.items()
             if name != "params" and parameter.kind not in (parameter.VAR_POSITIONAL,
                                                            parameter.VAR_KEYWORD)}
    return frozenset(taken) | frozenset(cls._fixed_hyperparameters)


def state_entry_names(cls):
    """The per-parameter state entries ``cls`` keeps."""
    return frozenset(cls._required_state) | frozenset(cls._optional_state)


def _looks_numeric(value):
    """A number, or a tuple/list/array of numbers: what a hyper-parameter looks like
    (a user's tag is usually a string)."""
    if isinstance(value, (tuple, list)):
        return bool(value) and all(_looks_numeric(v) for v in value)
    if isinstance(value, (np.ndarray, np.generic)):
        return value.dtype.kind in "biuf"
    return isinstance(value, numbers.Number)


def is_array(value):
    """True for a NumPy or CuPy array (not for Python or NumPy scalars such as step counts)."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic)


def _host_copy(value):
    """A NumPy copy of a state array (scalars such as step counts pass through)."""
    return backend.host_copy(value) if is_array(value) else value


def host_value(value, like=None):
    """A saved hyper-parameter as a Python value (arrays from a checkpoint become
    scalars or lists); a tuple stays a tuple when the current value is one."""
    if isinstance(value, (np.ndarray, np.generic)):
        value = value.item() if np.ndim(value) == 0 else value.tolist()
    if isinstance(like, tuple) and isinstance(value, list):
        value = tuple(value)
    return value


def _restore_state_value(value, param, key, index, optimizer_name):
    """One saved state entry, back on the parameter's device and in its dtype."""
    if key == "step":  # the only scalar entry; every other one is shaped like the parameter
        return int(host_value(value))
    array = np.asarray(backend.to_numpy(value))
    if array.shape != tuple(param.data.shape):
        raise ValueError(f"{optimizer_name}.load_state_dict: state {key!r} of parameter "
                         f"{index} has shape {array.shape}, the parameter has "
                         f"{tuple(param.data.shape)}")
    xp = backend.array_module(param.data)
    # A C-ordered copy: never alias the caller's arrays, and the fused CUDA updates
    # take C-contiguous state only (a torch tensor's may be laid out otherwise).
    return xp.array(array, dtype=param.data.dtype, order="C")
