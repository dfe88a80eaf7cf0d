"""The optimizer base class: parameter groups, the shared update loop and its checks.

A parameter is any object with ``.data`` (a NumPy or CuPy float array, updated in
place: other code holds references to it, so it is never rebound) and ``.grad``
(an array of the same shape on the same device, or None). ``minigrad.nn.Parameter``
is one.
"""
import numbers

import numpy as np

from .. import backend
from ..nn.parameter import is_uninitialized
from ..tensor import Tensor, can_write_in_place
from .replay import ReplayValues
from .state_dict import TORCH_FLAGS, is_array, load_optimizer_state, optimizer_state


class Optimizer:
    """Base class of all optimizers; mirrors ``torch.optim.Optimizer``.

    ``param_groups`` is a list of dicts, each with ``"params"`` (a list of
    parameters) and that group's hyper-parameters (``"lr"``, ...); schedulers change
    ``group["lr"]`` between steps. ``state`` maps each parameter (the object itself,
    as in PyTorch: ``opt.state[p]["exp_avg"]``) to its state dict (step count, moment
    buffers), created on its first update. Parameters hash by identity, so two
    parameters with equal values have separate entries. ``params`` may also be
    ``(name, parameter)`` pairs (``model.named_parameters()``): the names are kept in
    ``group["param_names"]``, as PyTorch keeps them, and name the parameter in errors.

    ``foreach`` is accepted for PyTorch compatibility and changes nothing: each
    parameter's update already is one fused kernel, with the numbers of PyTorch's
    ``foreach=False`` path.

    A subclass passes its ``defaults`` (hyper-parameter name -> value) to
    ``__init__``, lists the per-parameter state entries it keeps in
    ``_required_state`` (made on the first update) and ``_optional_state`` (made on
    first need), and implements ``_check_group`` (raise ValueError/TypeError for a
    bad hyper-parameter, and store the checked values back: NumPy numbers as Python
    ones, 0/1 flags as bools), ``_init_state`` (a new parameter's state) and
    ``_update`` (one parameter's step, through its device's kernel). This class
    holds the loop, and owns the two values an update reads that change from one
    step to the next: it hands ``_update`` the group's ``lr`` and, for a class that
    keeps ``state["step"]``, the step count it has just advanced. ``_update`` reads
    them from its arguments, never from ``group``/``state``, so that a CUDA graph can
    replay the update with both read from device memory (:meth:`replay_values`).
    """

    _required_state = ()
    _optional_state = ()
    # Hyper-parameters the class itself fixes (AdamW's decoupled weight decay), which a
    # loaded state dict leaves as they are: AdamW loading an Adam checkpoint stays AdamW.
    _fixed_hyperparameters = ()
    # The ReplayValues a CUDA graph is recording the update with (see replay_values).
    _replay = None

    def __init__(self, params, defaults, *, foreach=None):
        if foreach is not None:
            check_flag(type(self).__name__, "foreach", foreach)
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        for group in _as_param_groups(params):
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a group (a dict with ``"params"``; missing hyper-parameters take the defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry")
        group = dict(param_group)
        group["params"], names = _as_param_list(group["params"])
        if names is not None:
            group["param_names"] = names
        for name, default in self.defaults.items():
            group.setdefault(name, default)

        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for param in group["params"]:
            if id(param) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears more than once "
                                 "in the parameter groups")
            seen.add(id(param))
        self._validate_group(group)
        self.param_groups.append(group)

    # -------------------------------------------------------------------- step
    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set them to None (default, as PyTorch), or zero them.

        Zeroing writes into the gradient array in place, as PyTorch's ``zero_()``
        does, so code holding ``param.grad`` (or the array it views) sees the zeros.
        A gradient that cannot be written so (see ``tensor.can_write_in_place``:
        read-only, a broadcast view, or no array at all) is replaced by new zeros.
        """
        for group in self.param_groups:
            for param in group["params"]:
                grad = param.grad
                if set_to_none:
                    param.grad = None
                elif grad is not None:
                    if can_write_in_place(grad):
                        grad.fill(0)
                    else:
                        param.grad = backend.array_module(param.data).zeros_like(param.data)

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` if one is given.

        Parameters whose ``.grad`` is None are skipped and their state (step count
        included) is left alone, as in PyTorch. A gradient that is not an array of
        the parameter's shape on its device is an error naming the parameter. State
        arrays left on another device by ``Module.to`` after earlier steps are moved
        to their parameter's device.
        """
        loss = closure() if closure is not None else None
        replay, counts = self._replay, "step" in self._required_state
        for g, group in enumerate(self.param_groups):
            maximize = group.get("maximize", False)
            lr = group["lr"] if replay is None else replay.lr(g)
            for i, param in enumerate(group["params"]):
                grad = param.grad
                if grad is None:
                    continue
                data = param.data
                # The usual gradient (what backward leaves) passes these three cheap
                # comparisons; anything else is checked, and maybe converted, apart.
                if type(grad) is not type(data) or grad.dtype != data.dtype \
                        or grad.shape != data.shape:
                    grad = self._checked_grad(grad, data, group, g, i)
                if maximize:
                    grad = -grad  # PyTorch's maximize; a new array, .grad stays as it was
                state = self.state.get(param)
                if state is None:
                    state = self.state[param] = self._init_state(param, group)
                else:
                    # Module.to gives a parameter new .data on another device but cannot
                    # see these buffers. This runs per parameter per step, so it only
                    # compares types: a NumPy and a CuPy array differ in type; the rare
                    # mismatch is sorted out (and maybe found harmless) by _follow_device.
                    data_type = type(data)
                    for value in state.values():
                        if type(value) is not data_type and type(value) is not int:
                            _follow_device(param, state)
                            break
                step = None
                if counts:
                    if replay is None:
                        step = state["step"] = state["step"] + 1
                    else:
                        step = replay.count(state)
                self._update(param, grad, state, group, lr, step)
        return loss

    def replay_values(self, xp):
        """The values this optimizer's next :meth:`step` reads that change between
        steps, in device arrays of array module ``xp``: how a CUDA graph replays the
        update (see :class:`ReplayValues`). Call it after a step has created the state."""
        return ReplayValues(self, xp)

    def _checked_grad(self, grad, data, group, g, i):
        """A gradient whose type, dtype or shape differs from its parameter's data, made
        fit for the update, or an error naming the parameter.

        A floating gradient of another precision is rounded to the parameter's dtype
        (one copy, in that case only): backward gives a float32 parameter a float64
        gradient when float64 inputs meet it, and the GPU kernels take one dtype.
        """
        where = (f"{type(self).__name__}: {_describe_param(group, g, i)} "
                 f"(shape {tuple(data.shape)})")
        if isinstance(grad, Tensor):
            # Not unwrapped: backward, zero_grad and Tensor.to all take .grad as an
            # array, so a Tensor there would break elsewhere rather than here.
            raise TypeError(f"{where} has a minigrad Tensor as .grad; .grad must be a NumPy "
                            "or CuPy array, as backward() leaves it: assign tensor.data")
        if isinstance(grad, np.generic) and data.ndim == 0:
            grad = np.asarray(grad)  # NumPy arithmetic on 0-d arrays returns scalars
        grad_device = backend.device_of(grad)  # "cpu" for anything but a CuPy array
        if grad_device == "cpu" and not isinstance(grad, np.ndarray):
            raise TypeError(f"{where} has a .grad of type {type(grad).__name__}; .grad must "
                            "be a NumPy or CuPy array (or None)")
        data_device = backend.device_of(data)
        if grad_device != data_device:
            raise ValueError(f"{where} is on {data_device!r} but its grad is on "
                             f"{grad_device!r}; a gradient must be on its parameter's device")
        if grad.dtype.kind != "f":
            raise TypeError(f"{where} has a grad of dtype {grad.dtype}; gradients must be "
                            "floating-point")
        if grad.shape != data.shape:
            raise ValueError(f"{where}: its grad has shape {tuple(grad.shape)}, not the "
                             "parameter's")
        return grad.astype(data.dtype) if grad.dtype != data.dtype else grad

    def _validate_group(self, group):
        """Check ``group`` (torch's flags, then :meth:`_check_group`), in place."""
        for key, none_allowed in TORCH_FLAGS.items():
            if key in group and not (none_allowed and group[key] is None):
                group[key] = check_flag(type(self).__name__, key, group[key])
        self._check_group(group)

    def _check_group(self, group):
        """Raise ValueError/TypeError naming any hyper-parameter of ``group`` that is
        wrong; store the checked values back (see :meth:`_check_non_negative`)."""
        raise NotImplementedError(f"{type(self).__name__} must define _check_group")

    def _init_state(self, param, group):
        """The state of a parameter about to take its first step (empty unless overridden)."""
        return {}

    def _update(self, param, grad, state, group, lr, step):
        """Update one parameter in place from ``grad`` (its checked ``.grad``) with
        learning rate ``lr`` and, for a class that counts steps, ``step`` (the count
        including this step; else None). Both may be one-element device arrays."""
        raise NotImplementedError(f"{type(self).__name__} must define _update")

    @staticmethod
    def _kernel(name, param):
        """The update kernel ``name`` of the device that holds ``param``."""
        return backend.kernel(name, backend.device_of(param.data))

    def _check_number(self, name, value):
        """``value`` (hyper-parameter ``name``) as :func:`check_number` takes it."""
        return check_number(type(self).__name__, name, value)

    def _check_non_negative(self, group, *names):
        """Check that ``names`` in ``group`` are numbers >= 0 (NaN fails) and store them
        back as :func:`check_number` gives them (NumPy numbers as Python floats)."""
        for name in names:
            value = group[name] = self._check_number(name, group[name])
            if not value >= 0:  # written this way round so that NaN fails too
                raise ValueError(f"{type(self).__name__}: {name} must be >= 0, got {value!r}")

    def _check_flags(self, group, *names):
        """Check that ``names`` in ``group`` are flags; store them back as bools."""
        for name in names:
            group[name] = check_flag(type(self).__name__, name, group[name])

    # ------------------------------------------------------------- save/load
    def state_dict(self):
        """The optimizer's state, shaped like PyTorch's, with NumPy copies of the buffers.

        ``{"state": {index: {"step": int, "exp_avg": ndarray, ...}},
        "param_groups": [{"lr": ..., ..., "params": [index, ...]}]}`` where ``index``
        numbers the parameters in group order. Every array is a host copy, so the
        dict can go straight into an ``.npz`` checkpoint (``minigrad.io.save_tree``)
        and later steps do not change it (module ``optim.state_dict`` holds the format).
        """
        return optimizer_state(self)

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state saved by :meth:`state_dict`.

        The groups must match this optimizer's in number and size. Another registered
        optimizer's state dict is refused: a group with a hyper-parameter that one of
        them has and this one has not (``momentum`` into Adam), or a parameter state
        with an entry this optimizer does not keep (or without one it needs). An Adam
        checkpoint does load into AdamW, as in PyTorch, and AdamW stays AdamW. As in
        PyTorch, other group keys are loaded as they are (a user's ``"tag"``, a
        scheduler's ``"initial_lr"``; PyTorch's ``foreach``, ``fused``, ``capturable``
        and ``differentiable``, which change nothing here); a number under a key none
        of these explains is loaded too, with a warning naming it (a misspelt setting
        such as ``"betass"``). Hyper-parameters a checkpoint lacks (saved before they
        existed) keep their current values. Buffers are copied onto each parameter's
        device in its dtype. Everything is checked before anything changes, so a bad
        state dict leaves the optimizer as it was.
        """
        load_optimizer_state(self, state_dict)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            lines += [f"    {key}: {value}" for key, value in group.items() if key != "params"]
        return "\n".join(lines + [")"])


# --------------------------------------------------------------------- helpers
def check_number(owner, name, value):
    """``value`` (``owner``'s setting ``name``) if it is a real number, else a TypeError.

    A NumPy scalar or 0-d array, as NumPy arithmetic or a checkpoint gives one, is
    taken as the Python float it holds, as PyTorch takes it (and one type reaches
    the kernels).
    """
    if isinstance(value, (np.ndarray, np.generic)) and value.ndim == 0 \
            and value.dtype.kind in "iuf":
        return float(value)
    if not isinstance(value, numbers.Real) or isinstance(value, np.generic):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    return value


def check_flag(owner, name, value):
    """``value`` (``owner``'s option ``name``) as True or False, else a TypeError.

    1 and 0 are taken as PyTorch takes them (``nesterov=1``), NumPy's too; other
    numbers are refused rather than read as true.
    """
    if isinstance(value, (np.ndarray, np.generic)) and value.ndim == 0 \
            and value.dtype.kind in "biu":
        value = value.item()
    if isinstance(value, numbers.Integral) and value in (0, 1):  # bool is an Integral
        return bool(value)
    raise TypeError(f"{owner}: {name} must be True or False (or 1 or 0), got {value!r}")


def buffer_like(param, fill_value=0.0):
    """A new C-ordered state array like ``param.data`` (shape, dtype, device), filled
    with ``fill_value`` (the fused CUDA updates take C-contiguous arrays only)."""
    return backend.array_module(param.data).full(param.data.shape, fill_value,
                                                 dtype=param.data.dtype)


def _is_parameter(obj):
    return hasattr(obj, "data") and hasattr(obj, "grad")


def _is_named_parameter(item):
    """True for a ``(name, parameter)`` pair, as ``model.named_parameters()`` yields."""
    return (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
            and _is_parameter(item[1]))


def _as_param_list(params):
    """``(parameters, names)`` from a parameter, a list or an iterator of parameters or
    of ``(name, parameter)`` pairs; ``names`` is None for unnamed ones. Checks each."""
    if _is_parameter(params):
        params = [params]
    elif isinstance(params, (set, frozenset)):
        # A set's order changes between runs, and with it the state_dict numbering.
        raise TypeError("parameters must be given in an ordered container (a list, or "
                        "model.parameters()), not a set")
    params = list(params)
    names = None
    named = [_is_named_parameter(item) for item in params]
    if any(named):
        if not all(named):
            raise TypeError("parameters must be all (name, parameter) pairs or all "
                            "parameters, not a mix")
        names = [name for name, _ in params]
        params = [param for _, param in params]
    for i, param in enumerate(params):
        if not _is_parameter(param):
            raise TypeError(f"parameter {i} is a {type(param).__name__}, not a parameter "
                            "(an object with .data and .grad, such as nn.Parameter)")
        if is_uninitialized(param):
            raise ValueError(f"parameter {i} belongs to a lazy layer (LazyLinear, LazyConv2d, "
                             "Dense(units)) that has not seen an input yet, so it has no shape; "
                             "run one forward pass (e.g. model(x) or model.summary(shape)) "
                             "before building the optimizer")
        if type(param).__hash__ is None:
            raise TypeError(f"parameter {i} ({type(param).__name__}) is unhashable; the "
                            "optimizer keys its state by the parameter object itself")
        if getattr(param.data, "dtype", None) is None or param.data.dtype.kind != "f":
            raise TypeError(f"parameter {i} has data of dtype "
                            f"{getattr(param.data, 'dtype', type(param.data).__name__)}; "
                            "an optimizer updates floating-point arrays only")
    return params, names


def _as_param_groups(params):
    """The constructor's ``params`` (parameters, or dicts of PyTorch param groups) as groups."""
    if _is_parameter(params):
        raise TypeError("params must be an iterable of parameters or of dicts (e.g. "
                        "model.parameters() or [param]), got a single parameter")
    if isinstance(params, (set, frozenset)):
        _as_param_list(params)  # raises the set error
    items = list(params)
    if not items:
        raise ValueError("optimizer got an empty parameter list")
    if all(isinstance(item, dict) for item in items):
        return items
    if any(isinstance(item, dict) for item in items):
        raise TypeError("params must be all parameters or all dicts (parameter groups), "
                        "not a mix")
    return [{"params": items}]


def _describe_param(group, g, i):
    """How errors name parameter ``i`` of group ``g``: by index, and by name if it has one."""
    names = group.get("param_names")
    label = f" {names[i]!r}" if names is not None and i < len(names) else ""
    return f"parameter {i}{label} of group {g}"


def _follow_device(param, state):
    """Move ``state``'s arrays onto ``param``'s device where they are elsewhere (in place)."""
    device = backend.device_of(param.data)
    for key, value in state.items():
        if is_array(value):  # to_device leaves an array already there as it is
            state[key] = backend.to_device(value, device)  # same key: the dict keeps its size
