"""How an optimizer's values that change between steps (its learning rates, its step
counts) live on the device while a CUDA graph replays its update."""
import contextlib

import numpy as np


class ReplayValues:
    """An optimizer's values that change between steps, kept in device arrays.

    The protocol between an optimizer and a CUDA graph (``minigrad.cuda``) that replays
    its update, shared with :func:`minigrad.random.replay_values`:

    - :meth:`recording`: while it is active the optimizer's step reads each group's lr
      from ``lrs`` and advances the step counts in ``steps`` in place, on the device
      (a graph recorded meanwhile reads and advances them at every replay); the
      host's ``param_groups`` and ``state`` are left as they were;
    - :meth:`sync` before a replay: copy the host values the device holds stale (a
      scheduler moved an lr, an eager step advanced a count);
    - :meth:`advance` after a replay: count the step on the host too, so that
      ``state_dict()`` stays right;
    - :meth:`still_valid`: False once something the graph froze changed (any
      hyper-parameter other than the lr, the groups, the state dict).

    The counted parameters are those with a gradient and a step count when this is
    made, i.e. those the recorded step updates.
    """

    # Group entries that may change between replays (read on the device) or that only
    # schedulers use; every other one is frozen into a recorded graph.
    LIVE = ("params", "lr", "initial_lr")

    def __init__(self, optimizer, xp):
        groups = optimizer.param_groups
        self.optimizer, self._xp = optimizer, xp
        self.counted = [optimizer.state[p] for g in groups for p in g["params"]
                        if p.grad is not None and "step" in optimizer.state.get(p, ())]
        self._slots = {id(state): i for i, state in enumerate(self.counted)}
        self.lrs = xp.zeros(len(groups), dtype=np.float64)
        self.steps = xp.zeros(max(len(self.counted), 1), dtype=np.float64)
        self._lr_mirror = [None] * len(groups)  # what the device holds: None forces a copy
        self._step_mirror = None
        scratch = xp.zeros(1, dtype=np.float64)
        scratch += 1  # the in-place add count() records, loaded before any capture
        self._state = optimizer.state
        self._frozen = [[(k, v) for k, v in g.items() if k not in self.LIVE] for g in groups]

    @contextlib.contextmanager
    def recording(self):
        """Within: the optimizer's steps read and advance the device values."""
        self.optimizer._replay = self
        try:
            yield self
        finally:
            self.optimizer._replay = None

    def lr(self, g):
        """Group ``g``'s learning rate, as the update reads it while recording."""
        return self.lrs[g:g + 1]

    def count(self, state):
        """Advance ``state``'s step count on the device; returns it (a 1-element array).
        A state this did not count (made since) is counted on the host, as usual."""
        i = self._slots.get(id(state))
        if i is None:
            state["step"] += 1
            return state["step"]
        slot = self.steps[i:i + 1]
        slot += 1
        return slot

    def sync(self):
        """Copy to the device each host value that differs from what the device holds."""
        for i, group in enumerate(self.optimizer.param_groups):
            lr = group["lr"]
            if lr != self._lr_mirror[i]:
                self.lrs[i:i + 1].fill(lr)
                self._lr_mirror[i] = lr
        if self.counted:
            steps = [state["step"] for state in self.counted]
            if steps != self._step_mirror:
                self.steps[:len(steps)] = self._xp.asarray(np.asarray(steps, np.float64))
                self._step_mirror = steps

    def advance(self):
        """Count on the host the step a replay took on the device."""
        mirror = self._step_mirror
        for i, state in enumerate(self.counted):
            state["step"] += 1
            mirror[i] += 1

    def still_valid(self):
        """False when a value frozen into the recorded update has changed since."""
        optimizer = self.optimizer
        if optimizer.state is not self._state or len(optimizer.param_groups) != len(self._frozen):
            return False
        return all(group.get(name) == value
                   for group, frozen in zip(optimizer.param_groups, self._frozen)
                   for name, value in frozen)
