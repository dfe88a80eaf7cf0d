"""One training step (Chainer's Updater): forward, loss, backward, update.

Every loop that trains a model goes through a step object: :func:`fit`, the
learning-rate finder and the lab. The protocol is small:

- ``step(x, y, check=None) -> loss``: one step on the batch ``(x, y)``; returns the
  loss as a detached Tensor (not read back). ``check(loss, output)``, when given, is
  called once per step with the loss and the model's output; an exception it raises
  ends the step there (and propagates).
- ``step.checks_before_update``: True when ``check`` runs before the update (so a
  check that raises keeps the weights as they were), False when the update has
  already happened (a replayed CUDA graph does the whole step at once).
- ``step.model``, ``step.optimizer``, ``step.loss_fn``; ``step.output``: the model's
  output of the latest call (detached).

:class:`EagerStep` is the plain step; ``minigrad.cuda.GraphedStep`` captures the
same step in a CUDA graph and replays it. ``fit(..., step=...)`` takes either class
(or any ``(model, loss_fn, optimizer) -> step`` function).
"""

__all__ = ["EagerStep"]


class EagerStep:
    """The plain training step: ``output = model(x)``, ``loss = loss_fn(output, y)``,
    ``check(loss, output)``, then ``optimizer.zero_grad(); loss.backward();
    optimizer.step()``. See the module's docstring for the protocol."""

    checks_before_update = True

    def __init__(self, model, loss_fn, optimizer):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.output = None

    def __call__(self, x, y, check=None):
        """One step on ``(x, y)``; returns the loss (detached)."""
        output = self.model(x)
        loss = self.loss_fn(output, y)
        if check is not None:
            check(loss, output)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.output = output.detach()
        return loss.detach()

    def __repr__(self):
        return f"EagerStep({type(self.model).__name__}, {type(self.optimizer).__name__})"
