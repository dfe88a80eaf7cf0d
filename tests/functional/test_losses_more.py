"""Cross-entropy with weight / ignore_index / label_smoothing / (N, C, d...) inputs,
nll_loss, BCE with pos_weight and on probabilities, kl_div, smooth_l1: gradients by
finite differences, torch's numbers, the classes and registry names, clear errors."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import functional as F
from minigrad import losses
from tests.helpers.gradcheck import check_gradients
from tests.helpers.torch_oracle import check_against_torch

rng = np.random.default_rng(0)
LOGITS = rng.standard_normal((5, 4))
LABELS = np.array([0, 3, -100, 1, 3])
LOGITS_ND = rng.standard_normal((2, 4, 3, 2))
LABELS_ND = rng.integers(0, 4, (2, 3, 2))
LABELS_ND[0, 1, 1] = 2
WEIGHT = np.array([0.5, 2.0, 1.0, 3.0])

CE_CASES = {  # name: (logits, labels, kwargs)
    "plain-nd": (LOGITS_ND, LABELS_ND, {}),
    "weight": (LOGITS, np.array([0, 3, 2, 1, 3]), {"weight": WEIGHT}),
    "ignore": (LOGITS, LABELS, {}),
    "ignore-other": (LOGITS, np.array([0, 3, 2, 1, 3]), {"ignore_index": 3}),
    "smoothing": (LOGITS, np.array([0, 3, 2, 1, 3]), {"label_smoothing": 0.2}),
    "all": (LOGITS, LABELS, {"weight": WEIGHT, "label_smoothing": 0.1}),
    "all-nd": (LOGITS_ND, LABELS_ND, {"weight": WEIGHT, "label_smoothing": 0.3,
                                      "ignore_index": 2}),
    "unbatched": (LOGITS[0], np.array(2), {"label_smoothing": 0.1}),
}


def _torch():
    return pytest.importorskip("torch")


def _as_torch(kwargs):
    import torch
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


@pytest.mark.parametrize("case", sorted(CE_CASES))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(case, reduction):
    torch = _torch()
    logits, labels, kwargs = CE_CASES[case]
    check_against_torch(
        [logits],
        lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(labels),
                                                    reduction=reduction, **_as_torch(kwargs)),
        lambda x: F.cross_entropy(x, labels, reduction=reduction, **kwargs), atol=1e-12, rtol=1e-5)


@pytest.mark.parametrize("case", ["plain-nd", "all", "all-nd"])
def test_cross_entropy_gradient(case):
    logits, labels, kwargs = CE_CASES[case]
    check_gradients(lambda x: F.cross_entropy(x, labels, **kwargs), logits)


def test_cross_entropy_probability_targets_with_weight_and_smoothing():
    torch = _torch()
    probs = rng.dirichlet(np.ones(4), (2, 3, 2)).transpose(0, 3, 1, 2)  # (N, C, d1, d2)
    for kwargs in ({}, {"weight": WEIGHT, "label_smoothing": 0.2}):
        check_against_torch(
            [LOGITS_ND, probs],
            lambda x, p: torch.nn.functional.cross_entropy(x, p, **_as_torch(kwargs)),
            lambda x, p: F.cross_entropy(x, p, **kwargs), atol=1e-12, rtol=1e-5)
    check_gradients(lambda x: F.cross_entropy(x, mg.tensor(probs), label_smoothing=0.2), LOGITS_ND)


def test_plain_cross_entropy_keeps_the_fused_kernel():
    x = mg.tensor(LOGITS.astype(np.float32), requires_grad=True)
    plain = F.cross_entropy(x, np.array([0, 3, 2, 1, 3]), reduction="none")
    assert plain.node.name == "cross_entropy"  # the device kernel's op
    nd = F.cross_entropy(mg.tensor(LOGITS_ND, requires_grad=True), LABELS_ND, reduction="none")
    assert nd.node.inputs[0].node.name == "cross_entropy"
    weighted = F.cross_entropy(x, np.array([0, 3, 2, 1, 3]), WEIGHT, reduction="none")
    assert weighted.node.name != "cross_entropy"


@pytest.mark.parametrize("kwargs", [{}, {"weight": WEIGHT}, {"ignore_index": 3},
                                    {"weight": WEIGHT, "reduction": "sum"},
                                    {"reduction": "none"}])
def test_nll_loss_matches_torch_and_finite_differences(kwargs):
    torch = _torch()
    for scores, labels in ((LOGITS, np.array([0, 3, 2, 1, 3])), (LOGITS_ND, LABELS_ND)):
        check_against_torch([scores],
                            lambda x: torch.nn.functional.nll_loss(x, torch.tensor(labels),
                                                                   **_as_torch(kwargs)),
                            lambda x: F.nll_loss(x, labels, **kwargs), atol=1e-12, rtol=1e-5)
        check_gradients(lambda x: F.nll_loss(x, labels, **kwargs), scores)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_every_label_ignored_gives_nan_as_torch():
    assert np.isnan(F.cross_entropy(mg.tensor(LOGITS[:2]), np.array([-100, -100])).item())


BCE_X = rng.standard_normal((4, 3)) * 3
BCE_T = rng.random((4, 3))
BCE_CASES = {
    "plain": {}, "pos_weight": {"pos_weight": np.array([0.5, 2.0, 3.0])},
    "weight": {"weight": rng.random((4, 1))},
    "both": {"pos_weight": np.array([2.0]), "weight": rng.random(3)},
}


@pytest.mark.parametrize("case", sorted(BCE_CASES))
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_with_logits_matches_torch(case, reduction):
    torch = _torch()
    kwargs = BCE_CASES[case]
    check_against_torch(
        [BCE_X, BCE_T],
        lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(
            x, t, reduction=reduction, **_as_torch(kwargs)),
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction, **kwargs),
        atol=1e-12, rtol=1e-5)
    check_gradients(lambda x, t: F.binary_cross_entropy_with_logits(x, t, **kwargs),
                    BCE_X, BCE_T)


def test_bce_with_logits_pos_weight_gradient():
    check_gradients(lambda x, w: F.binary_cross_entropy_with_logits(x, BCE_T, pos_weight=w),
                    BCE_X, np.array([0.5, 2.0, 3.0]))


def test_binary_cross_entropy_on_probabilities():
    torch = _torch()
    p = np.array([[0.1, 0.5, 0.93], [0.3, 0.02, 0.7]])
    t = np.array([[0.0, 1.0, 0.7], [1.0, 0.2, 0.0]])
    for kwargs in ({}, {"weight": np.array([1.0, 2.0, 0.5])}, {"reduction": "sum"}):
        check_against_torch([p, t], lambda a, b: torch.nn.functional.binary_cross_entropy(
                                a, b, **_as_torch(kwargs)),
                            lambda a, b: F.binary_cross_entropy(a, b, **kwargs), atol=1e-12,
                            rtol=1e-5)
    check_gradients(F.binary_cross_entropy, p, t)
    # At 0 and 1 the logs clamp at -100, as torch: finite, not inf.
    edge = np.array([0.0, 1.0, 0.0, 1.0], np.float32)
    target = np.array([1.0, 0.0, 0.0, 1.0], np.float32)
    check_against_torch([edge], lambda a: torch.nn.functional.binary_cross_entropy(
                            a, torch.tensor(target), reduction="none"),
                        lambda a: F.binary_cross_entropy(a, target, reduction="none"),
                        atol=1e-4, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # torch's, about 'mean'
@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    torch = _torch()
    log_q = np.log(rng.dirichlet(np.ones(4), 3))
    p = rng.dirichlet(np.ones(4), 3)
    p[0, 1] = 0.0  # 0 * log 0 counts as 0
    target = np.log(rng.dirichlet(np.ones(4), 3)) if log_target else p
    check_against_torch([log_q, target],
                        lambda a, b: torch.nn.functional.kl_div(a, b, reduction=reduction,
                                                                log_target=log_target),
                        lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
                        atol=1e-12, rtol=1e-5)
    check_gradients(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
                    log_q, target if log_target else p + 0.1)


@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0])
def test_smooth_l1_matches_torch(beta):
    torch = _torch()
    a, b = rng.standard_normal(7), rng.standard_normal(7)
    for reduction in ("mean", "none"):
        check_against_torch([a, b], lambda x, y: torch.nn.functional.smooth_l1_loss(
                                x, y, reduction=reduction, beta=beta),
                            lambda x, y: F.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
                            atol=1e-12, rtol=1e-5)
    check_gradients(lambda x, y: F.smooth_l1_loss(x, y, beta=beta), a, b)


def test_loss_classes_match_torch_classes():
    torch = _torch()
    x32, labels = LOGITS.astype(np.float32), np.array([0, 3, 2, 1, 3])
    pairs = [
        (losses.CrossEntropyLoss(mg.tensor(WEIGHT.astype(np.float32)), label_smoothing=0.1),
         torch.nn.CrossEntropyLoss(torch.tensor(WEIGHT, dtype=torch.float32),
                                   label_smoothing=0.1), x32, labels),
        (losses.NLLLoss(ignore_index=3), torch.nn.NLLLoss(ignore_index=3), x32, labels),
        (losses.get("nll"), torch.nn.NLLLoss(), x32, labels),
        (losses.BCEWithLogitsLoss(pos_weight=np.float32([2.0])),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2.0])), x32, (x32 > 0).astype(np.float32)),
        (losses.get("binary_cross_entropy"), torch.nn.BCELoss(), 1 / (1 + np.exp(-x32)),
         (x32 > 0).astype(np.float32)),
        (losses.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"),
         np.log(np.full((5, 4), 0.25, np.float32)), np.full((5, 4), 0.25, np.float32)),
        (losses.get("smooth_l1", beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), x32,
         np.zeros_like(x32)),
    ]
    for mine, theirs, prediction, target in pairs:  # the target is a constant in both
        check_against_torch([prediction], lambda x: theirs(x, torch.tensor(target)),
                            lambda x: mine(x, mg.tensor(target)), atol=1e-6, rtol=1e-5)


def test_bad_arguments_are_clear_errors():
    x = mg.tensor(LOGITS)
    with pytest.raises(ValueError, match="weight must be 4 floats"):
        F.cross_entropy(x, np.array([0, 1, 2, 3, 0]), weight=np.ones(3))
    with pytest.raises(TypeError, match="reduction= by keyword"):
        F.cross_entropy(x, np.array([0, 1, 2, 3, 0]), "sum")
    with pytest.raises(ValueError, match="labels of shape \\(2, 3, 2\\)"):
        F.cross_entropy(mg.tensor(LOGITS_ND), LABELS_ND[:, :2])
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, np.array([0, 1, 2, 3, 0]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="size_average and reduce"):
        F.nll_loss(x, np.array([0, 1, 2, 3, 0]), size_average=True)
    with pytest.raises(ValueError, match="label 7 is outside"):
        F.nll_loss(x, np.array([0, 1, 7, 3, -100]))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        F.binary_cross_entropy(mg.tensor(np.array([1.5])), np.array([1.0]))
    with pytest.raises(ValueError, match="pos_weight of shape"):
        F.binary_cross_entropy_with_logits(mg.tensor(BCE_X), BCE_T, pos_weight=np.ones(2))
    with pytest.raises(ValueError, match="batchmean"):
        F.kl_div(x, x, reduction="avg")
    with pytest.raises(ValueError, match="beta"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="size_average"):
        losses.CrossEntropyLoss(size_average=False)
