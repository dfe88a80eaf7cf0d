"""Loss functions as classes, by name through ``get``; each matches its PyTorch namesake.

Each class is a thin callable over its functional form in ``functional/``, where
the forward and backward live. Adding a loss: one class and one line in ``LOSSES``.
"""
from . import backend
from . import functional as F
from .tensor import Tensor


class Loss:
    """Base: ``loss(prediction, target) -> scalar Tensor`` (or per-sample with reduction='none')."""

    #: Whether the loss compares the outputs with a target of the same shape (MSE, MAE,
    #: Huber, logistic), so that ``fit`` turns integer class labels into one-hot rows.
    compares_values = False

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def __call__(self, prediction, target):
        return self.forward(prediction, target)

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


def _in_dtype_of(prediction, target):
    """``target`` (a Tensor, an array or a list) in ``prediction``'s floating dtype.

    NumPy targets are float64 (or integer, or bool) by default; left alone they would
    turn a float32 model's loss, and every gradient behind it, into float64. Keras
    casts the target to the prediction's dtype too (PyTorch promotes instead). Costs
    one cast of the target where the dtypes differ, nothing where they agree.
    """
    dtype = prediction.dtype
    if dtype.kind != "f":
        return target
    if hasattr(target, "dtype"):  # a Tensor (cast keeps its graph) or a NumPy/CuPy array
        return target if target.dtype == dtype else target.astype(dtype)
    return backend.xp_for(prediction.device).asarray(target, dtype=dtype)


class _ElementwiseLoss(Loss):
    """A loss comparing prediction and target element by element, in the prediction's dtype."""

    compares_values = True

    def __call__(self, prediction, target):
        return self.forward(prediction, _in_dtype_of(prediction, target))


class MSELoss(_ElementwiseLoss):
    """Mean squared error (torch.nn.MSELoss)."""

    def forward(self, prediction, target):
        return F.mse_loss(prediction, target, self.reduction)


class L1Loss(_ElementwiseLoss):
    """Mean absolute error (torch.nn.L1Loss)."""

    def forward(self, prediction, target):
        return F.l1_loss(prediction, target, self.reduction)


class HuberLoss(_ElementwiseLoss):
    """Quadratic near the target, linear beyond ``delta`` (torch.nn.HuberLoss)."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, prediction, target):
        return F.huber_loss(prediction, target, self.reduction, self.delta)


def _legacy_none(loss, size_average, reduce):
    if size_average is not None or reduce is not None:
        raise ValueError(f"{loss}: size_average and reduce are deprecated in torch and not "
                         f"supported; use reduction='mean', 'sum' or 'none'")


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy on logits and integer labels or class probabilities
    (torch.nn.CrossEntropyLoss): ``weight`` per class, ``ignore_index``,
    ``label_smoothing``, and (N, C, d1, ...) inputs."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        _legacy_none("CrossEntropyLoss", size_average, reduce)
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, logits, target):
        if isinstance(target, Tensor) and target.dtype.kind == "f":  # class probabilities
            target = _in_dtype_of(logits, target)
        return F.cross_entropy(logits, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(Loss):
    """Negative log-likelihood of labels under log-probabilities (torch.nn.NLLLoss)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        _legacy_none("NLLLoss", size_average, reduce)
        super().__init__(reduction)
        self.weight, self.ignore_index = weight, ignore_index

    def forward(self, log_probs, target):
        return F.nll_loss(log_probs, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCEWithLogitsLoss(_ElementwiseLoss):
    """Logistic loss on raw scores with 0/1 targets (torch.nn.BCEWithLogitsLoss);
    ``weight`` per element, ``pos_weight`` for the positives (e.g. one per class)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        _legacy_none("BCEWithLogitsLoss", size_average, reduce)
        super().__init__(reduction)
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class BCELoss(_ElementwiseLoss):
    """Binary cross-entropy on probabilities (torch.nn.BCELoss; logs clamped at -100)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        _legacy_none("BCELoss", size_average, reduce)
        super().__init__(reduction)
        self.weight = weight

    def forward(self, probs, target):
        return F.binary_cross_entropy(probs, target, self.weight, reduction=self.reduction)


class KLDivLoss(_ElementwiseLoss):
    """KL divergence of the target from log-probabilities (torch.nn.KLDivLoss);
    ``reduction`` may also be "batchmean"; ``log_target`` for log-probability targets."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        _legacy_none("KLDivLoss", size_average, reduce)
        if reduction not in ("mean", "sum", "none", "batchmean"):
            raise ValueError(f"KLDivLoss: reduction must be 'mean', 'batchmean', 'sum' or "
                             f"'none', got {reduction!r}")
        self.reduction, self.log_target = reduction, log_target

    def forward(self, log_probs, target):
        return F.kl_div(log_probs, target, reduction=self.reduction, log_target=self.log_target)


class SmoothL1Loss(_ElementwiseLoss):
    """Quadratic below ``beta``, linear beyond (torch.nn.SmoothL1Loss)."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        _legacy_none("SmoothL1Loss", size_average, reduce)
        super().__init__(reduction)
        self.beta = beta

    def forward(self, prediction, target):
        return F.smooth_l1_loss(prediction, target, reduction=self.reduction, beta=self.beta)


class MultiMarginLoss(Loss):
    """Multi-class hinge loss (torch.nn.MultiMarginLoss)."""

    def __init__(self, reduction="mean", margin=1.0):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, logits, target):
        return F.multi_margin_loss(logits, target, self.margin, self.reduction)


LOSSES = {
    "mse": MSELoss,
    "mae": L1Loss,
    "huber": HuberLoss,
    "cross_entropy": CrossEntropyLoss,
    "logistic": BCEWithLogitsLoss,
    "bce": BCEWithLogitsLoss,
    "hinge": MultiMarginLoss,
    "nll": NLLLoss,
    "binary_cross_entropy": BCELoss,
    "kl_div": KLDivLoss,
    "smooth_l1": SmoothL1Loss,
}


def get(name, **kwargs):
    """A loss by registry name (or an existing Loss, returned as is)."""
    if not isinstance(name, str):  # already a loss object or a callable
        return name
    key = str(name).lower().replace("-", "_")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; known losses: {', '.join(sorted(LOSSES))}")
    return LOSSES[key](**kwargs)
