"""A sweep for tests: in this process, silent, without plots."""


def quiet_sweep(space, out, trial_fn, **kwargs):
    """A ``minigrad.tune.Sweep`` of ``trial_fn`` into ``out`` that, unless told otherwise,
    runs in this process (one worker), prints nothing and draws no plots."""
    from minigrad.tune import Sweep  # imported here: most tests never sweep

    kwargs.setdefault("workers", 1)
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("plots", False)
    return Sweep(space, trial_fn, out, **kwargs)
