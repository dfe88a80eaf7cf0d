"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW)."""
from .optimizer import Optimizer, buffer_like


class Adam(Optimizer):
    """Adam: bias-corrected running means of the gradient and of its square.

    Same update rule and defaults as ``torch.optim.Adam`` (without amsgrad).
    ``weight_decay`` adds ``weight_decay * param`` to the gradient (L2); with
    ``decoupled_weight_decay=True`` it shrinks the parameter directly instead, which
    is AdamW.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *,
                 decoupled_weight_decay=False):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "decoupled_weight_decay": decoupled_weight_decay})

    def _check_group(self, group):
        self._check_non_negative(group, "lr", "eps", "weight_decay")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), "
                             f"got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0 <= beta < 1:
                raise ValueError(f"{type(self).__name__}: betas[{i}] must be in [0, 1), "
                                 f"got {beta!r}")

    def _init_state(self, param, group):
        return {"step": 0, "exp_avg": buffer_like(param), "exp_avg_sq": buffer_like(param)}

    def _update(self, param, state, group):
        state["step"] += 1
        beta1, beta2 = group["betas"]
        self._kernel("adam_update", param)(
            param.data, param.grad, state["exp_avg"], state["exp_avg_sq"],
            lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], step=state["step"],
            decoupled_weight_decay=group["decoupled_weight_decay"])


class AdamW(Adam):
    """Adam with decoupled weight decay (``param *= 1 - lr * weight_decay`` each step).

    Same update rule and defaults as ``torch.optim.AdamW`` (note the default
    ``weight_decay=1e-2``).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled_weight_decay=True)
