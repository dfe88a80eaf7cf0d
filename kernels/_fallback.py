"""The one rule every fast kernel shares: a call it is not built for runs the reference.

The fast kernels (``kernels.cpu``, ``kernels.cuda``) compute in float32 and float64;
the reference kernels (``kernels.reference``) take any dtype and keep NumPy's rules
for float16 and integers. Two decorators hold the rule, so that a fast kernel's
body starts with its real work:

- :func:`falls_back_to` (forwards, updates): a call whose named array arguments
  the fast kernel does not take goes, with the same arguments, to the reference.
- :func:`backward_falls_back` (backwards): a cache that the fast forward did not
  make (the forward went to the reference) goes to the reference's backward.
"""
import functools
import inspect

from ._xp import fast_dtype

_MISSING = object()


def falls_back_to(reference_kernel, arrays, accepts=None):
    """Decorator: ``reference_kernel`` runs calls the fast kernel does not take.

    ``arrays`` names the decorated kernel's array parameters; ``accepts(*values)``
    says whether the fast kernel takes them (default: they have a common float32 or
    float64 dtype, :func:`kernels._xp.fast_dtype`). A call missing one of them goes
    to the fast kernel, whose signature then raises the usual TypeError.
    """
    if accepts is None:
        def accepts(*values):
            return fast_dtype(*values) is not None

    def wrap(kernel):
        pick = _Arguments(kernel, arrays).values

        @functools.wraps(kernel)
        def dispatch(*args, **kwargs):
            values = pick(args, kwargs)
            if values is not None and not accepts(*values):
                return reference_kernel(*args, **kwargs)
            return kernel(*args, **kwargs)
        return dispatch
    return wrap


def backward_falls_back(reference_backward, cache_type, arrays=(), reference_cache=None):
    """Decorator for a backward ``(..., cache, ...)``: ``reference_backward`` (same
    arguments) runs it when ``cache`` is not a ``cache_type`` (a class or a tuple of
    them: what the fast forward makes).

    With ``arrays`` (names of array parameters) and ``reference_cache`` (our cache ->
    the reference forward's cache for the same call), a call whose arrays have no
    fast dtype (a float16 gradient) also runs the reference, on that cache.
    """
    if bool(arrays) != (reference_cache is not None):
        raise TypeError("backward_falls_back: arrays and reference_cache go together")

    def wrap(backward):
        where = _Arguments(backward, ("cache",))
        position = where.slots[0][1]
        if position is None:
            raise TypeError(f"{backward.__qualname__}: cache must be a positional parameter")
        pick = _Arguments(backward, arrays).values

        @functools.wraps(backward)
        def dispatch(*args, **kwargs):
            cache = args[position] if len(args) > position else kwargs.get("cache")
            if not isinstance(cache, cache_type):
                return reference_backward(*args, **kwargs)
            if arrays:
                values = pick(args, kwargs)
                if values is not None and fast_dtype(*values) is None:
                    args, kwargs = where.replaced(args, kwargs, reference_cache(cache))
                    return reference_backward(*args, **kwargs)
            return backward(*args, **kwargs)
        return dispatch
    return wrap


def one_fast_dtype(*arrays):
    """True when the arrays share one shape and one float32/float64 dtype (the
    elementwise kernels take nothing else); for ``falls_back_to(accepts=...)``."""
    dtype, shape = arrays[0].dtype, arrays[0].shape
    return fast_dtype(arrays[0]) is not None and all(
        a.dtype == dtype and a.shape == shape for a in arrays[1:])


class _Arguments:
    """Where a call of ``function`` holds its parameters ``names``: read once, at
    decoration, from the signature, so that a call costs a few index lookups."""

    def __init__(self, function, names):
        parameters = inspect.signature(function).parameters
        order = list(parameters)
        self.slots = []
        for name in names:
            if name not in parameters:
                raise TypeError(f"{function.__qualname__} has no parameter {name!r}")
            parameter = parameters[name]
            positional = parameter.kind in (parameter.POSITIONAL_ONLY,
                                            parameter.POSITIONAL_OR_KEYWORD)
            default = _MISSING if parameter.default is parameter.empty else parameter.default
            self.slots.append((name, order.index(name) if positional else None, default))
        positions = [position for _, position, _ in self.slots]
        # The usual call passes every array by position: then a call reads only args.
        self.positions = None if None in positions else positions
        self.reach = max(positions, default=-1) + 1 if self.positions is not None else 0

    def values(self, args, kwargs):
        """The values of ``names`` in a call; None if one is not given."""
        if self.positions is not None and len(args) >= self.reach:
            return [args[position] for position in self.positions]
        values = [args[position] if position is not None and position < len(args)
                  else kwargs.get(name, default) for name, position, default in self.slots]
        for value in values:
            if value is _MISSING:
                return None
        return values

    def replaced(self, args, kwargs, value):
        """(args, kwargs) with the first of ``names`` set to ``value``."""
        name, position, _ = self.slots[0]
        if position is not None and position < len(args):
            return args[:position] + (value,) + args[position + 1:], kwargs
        return args, {**kwargs, name: value}
