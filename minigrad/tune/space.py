"""Search spaces: what a sweep varies, and how it turns into a list of trial configs.

::

    space = SearchSpace({
        "optimizer": ["adam", "sgd"],          # a list: grid axis, or uniform choice
        "lr": loguniform(1e-4, 1e-2),          # a range: random search only
        "activation": choice(["relu", "tanh"]),
        "epochs": 5,                           # a single value: fixed, not varied
    })
    space.expand("random", trials=8, seed=0)  # -> 8 distinct config dicts

Every config is a plain JSON-able dict, and :func:`trial_id` hashes it, so the
same configuration has the same id in every run (that is how a restarted sweep
knows which trials are done).
"""
import hashlib
import itertools
import json
import math

import numpy as np

__all__ = ["SearchSpace", "Distribution", "Choice", "Uniform", "LogUniform", "choice",
           "uniform", "loguniform", "trial_id", "canonical_json"]


def canonical_json(config):
    """The config as compact JSON with sorted keys: the text its trial id hashes."""
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a trial config must hold only JSON values (strings, numbers, "
                        f"booleans, None, lists, dicts) and no NaN: {exc}") from None


def trial_id(config):
    """A stable 10-hex-digit id of a configuration (SHA-1 of its canonical JSON)."""
    return hashlib.sha1(canonical_json(config).encode("utf-8")).hexdigest()[:10]


def _plain(value, name):
    """NumPy scalars become Python ones; anything not JSON-able is a TypeError."""
    if isinstance(value, np.generic):
        value = value.item()
    canonical_json({name: value})  # raises a TypeError naming the problem
    return value


def _as_value_list(spec, name):
    """A tuple, a ``range`` or a 1-D NumPy array of values as a list (so
    ``np.logspace(-4, -2, 3)`` is a grid axis like ``[1e-4, 1e-3, 1e-2]``); a 0-d array
    as its one value; anything else as it is."""
    if isinstance(spec, (tuple, range)):
        return list(spec)
    if isinstance(spec, np.ndarray):
        if spec.ndim == 0:
            return spec.item()
        if spec.ndim != 1:
            raise TypeError(f"hyperparameter {name!r}: an array of values must be 1-D, got "
                            f"shape {spec.shape}")
        return spec.tolist()
    return spec


def _round_significant(x, digits):
    if digits is None or x == 0:
        return float(x)
    return float(f"{x:.{int(digits)}g}")


class Distribution:
    """Base class of a varied hyperparameter: ``sample(rng)``; finite ones list ``values``."""

    values = None  # a list for finite distributions, None for continuous ones

    def sample(self, rng):
        """One value drawn with the NumPy Generator ``rng``."""
        raise NotImplementedError


class Choice(Distribution):
    """One of a list of values (grid search walks all of them; random search draws one)."""

    def __init__(self, values):
        values = list(values)
        if not values:
            raise ValueError("choice() needs at least one value")
        self.values = values

    def sample(self, rng):
        return self.values[int(rng.integers(len(self.values)))]

    def __repr__(self):
        return f"choice({self.values!r})"


class Uniform(Distribution):
    """A float drawn uniformly from ``[low, high]``, rounded to ``digits`` significant digits."""

    def __init__(self, low, high, digits=3):
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
            raise ValueError(f"uniform(low, high) needs finite low < high, got "
                             f"({low}, {high})")
        self.low, self.high, self.digits = low, high, digits

    def sample(self, rng):
        return _round_significant(rng.uniform(self.low, self.high), self.digits)

    def __repr__(self):
        return f"uniform({self.low:g}, {self.high:g})"


class LogUniform(Distribution):
    """A float whose logarithm is uniform on ``[log low, log high]`` (learning rates),
    rounded to ``digits`` significant digits so tables stay readable."""

    def __init__(self, low, high, digits=3):
        low, high = float(low), float(high)
        if not (math.isfinite(low) and math.isfinite(high)) or not 0 < low < high:
            raise ValueError(f"loguniform(low, high) needs 0 < low < high, got "
                             f"({low}, {high})")
        self.low, self.high, self.digits = low, high, digits

    def sample(self, rng):
        value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return _round_significant(value, self.digits)

    def __repr__(self):
        return f"loguniform({self.low:g}, {self.high:g})"


def choice(values):
    """A hyperparameter taking one of ``values`` (same as giving the list itself)."""
    return Choice(values)


def uniform(low, high, digits=3):
    """A float hyperparameter drawn uniformly from ``[low, high]`` (random search)."""
    return Uniform(low, high, digits)


def loguniform(low, high, digits=3):
    """A positive float hyperparameter drawn log-uniformly (random search; for rates)."""
    return LogUniform(low, high, digits)


class SearchSpace:
    """Named hyperparameters: lists or :func:`choice` (finite; tuples, ``range`` and 1-D
    NumPy arrays count as lists), :func:`uniform` / :func:`loguniform` ranges (random
    search only), or single fixed values.

    Configs keep the order in which the names were given.
    """

    def __init__(self, params):
        if isinstance(params, SearchSpace):
            params = params.params
        if not isinstance(params, dict) or not params:
            raise TypeError("SearchSpace needs a non-empty dict of name -> values, got "
                            f"{type(params).__name__}")
        self.params = {}
        for name, spec in params.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"hyperparameter names must be non-empty strings, got {name!r}")
            spec = _as_value_list(spec, name)
            if isinstance(spec, list):
                if not spec:
                    raise ValueError(f"hyperparameter {name!r} has an empty list of values")
                spec = Choice(spec)
            if isinstance(spec, Choice):
                spec = Choice([_plain(v, name) for v in spec.values])
            elif not isinstance(spec, Distribution):
                spec = _plain(spec, name)
            self.params[name] = spec

    @property
    def varied(self):
        """Names of the hyperparameters that take more than one value."""
        return [name for name, spec in self.params.items()
                if isinstance(spec, Distribution) and (spec.values is None or
                                                       len(spec.values) > 1)]

    @property
    def fixed(self):
        """The hyperparameters that take a single value, as a dict."""
        out = {}
        for name, spec in self.params.items():
            if not isinstance(spec, Distribution):
                out[name] = spec
            elif spec.values is not None and len(spec.values) == 1:
                out[name] = spec.values[0]
        return out

    @property
    def size(self):
        """Number of grid points, or ``None`` when a range makes the space infinite."""
        total = 1
        for spec in self.params.values():
            if isinstance(spec, Distribution):
                if spec.values is None:
                    return None
                total *= len(spec.values)
        return total

    def grid(self):
        """Every combination of the listed values, first names varying slowest."""
        axes = []
        for name, spec in self.params.items():
            if isinstance(spec, Distribution):
                if spec.values is None:
                    raise ValueError(f"grid search cannot enumerate {name}={spec!r}: give a "
                                     f"list of values, or use random search")
                axes.append(spec.values)
            else:
                axes.append([spec])
        names = list(self.params)
        return [dict(zip(names, combo)) for combo in itertools.product(*axes)]

    def sample(self, trials, seed=0):
        """``trials`` distinct configs drawn with a generator seeded by ``seed``."""
        trials = int(trials)
        if trials < 1:
            raise ValueError(f"trials must be >= 1, got {trials}")
        size = self.size
        if size is not None and trials > size:
            raise ValueError(f"random search asked for {trials} distinct trials, but the space "
                             f"has only {size} configurations; ask for at most {size} or use "
                             f"grid search")
        rng = np.random.default_rng(seed)
        configs, seen = [], set()
        # Duplicates are redrawn; a finite space can need several draws per new config
        # near its size (coupon collecting), hence the generous bound.
        for _ in range(100 * trials + 1000):
            config = {name: spec.sample(rng) if isinstance(spec, Distribution) else spec
                      for name, spec in self.params.items()}
            key = canonical_json(config)
            if key in seen:
                continue
            seen.add(key)
            configs.append(config)
            if len(configs) == trials:
                return configs
        raise ValueError(f"could not draw {trials} distinct configurations (got "
                         f"{len(configs)}); widen the ranges or ask for fewer trials")

    def expand(self, kind="grid", trials=None, seed=0):
        """The list of trial configs: ``kind="grid"`` (every combination) or
        ``"random"`` (``trials`` distinct seeded draws)."""
        if kind == "grid":
            if trials is not None:
                raise ValueError("trials= applies to random search; grid search runs every "
                                 "combination")
            return self.grid()
        if kind == "random":
            if trials is None:
                raise ValueError("random search needs trials=N")
            return self.sample(trials, seed)
        raise ValueError(f"kind must be 'grid' or 'random', got {kind!r}")

    def describe(self):
        """A JSON-able description (for the results file)."""
        return {name: (repr(spec) if isinstance(spec, Distribution) and spec.values is None
                       else spec.values if isinstance(spec, Distribution) else spec)
                for name, spec in self.params.items()}

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"SearchSpace({inner})"
