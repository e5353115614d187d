"""Losses: values against hand-written formulas, the reduction attribute, errors."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad

from sgdscope.zoo import build_loss, build_model, list_losses

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 1])


def log_softmax(z):
    return z - torch.logsumexp(z, dim=1, keepdim=True)


def test_list_losses():
    assert list_losses() == ["cross_entropy", "label_smoothing", "mse"]


@pytest.mark.parametrize("name", ["cross_entropy", "label_smoothing", "mse"])
def test_modules_with_mean_reduction(name):
    loss = build_loss(name)
    assert isinstance(loss, torch.nn.Module) and loss.reduction == "mean"
    assert build_loss(name, reduction="sum").reduction == "sum"


def test_cross_entropy():
    expected = -log_softmax(LOGITS)[torch.arange(2), LABELS].mean()
    assert torch.allclose(build_loss("cross_entropy")(LOGITS, LABELS), expected)


def test_label_smoothing_formula():
    s, k = 0.2, 3
    target = torch.full((2, k), s / k, dtype=torch.float64)
    target[torch.arange(2), LABELS] += 1 - s
    expected = -(target * log_softmax(LOGITS)).sum(1).mean()
    assert torch.allclose(build_loss("label_smoothing", smoothing=s)(LOGITS, LABELS), expected)
    assert torch.allclose(build_loss("label_smoothing", smoothing=0.0)(LOGITS, LABELS), build_loss("cross_entropy")(LOGITS, LABELS))


def test_mse_on_one_hot_targets():
    onehot = torch.eye(3, dtype=torch.float64)[LABELS]
    per_example = ((LOGITS - onehot) ** 2).sum(1)
    assert torch.allclose(build_loss("mse")(LOGITS, LABELS), per_example.mean())
    assert torch.allclose(build_loss("mse", class_reduction="mean")(LOGITS, LABELS), torch.nn.functional.mse_loss(LOGITS, onehot))
    assert torch.allclose(build_loss("mse", reduction="sum")(LOGITS, LABELS), per_example.sum())
    assert torch.allclose(build_loss("mse", reduction="none")(LOGITS, LABELS), per_example)
    assert torch.allclose(build_loss("mse")(LOGITS, onehot), per_example.mean())  # float targets as given


def test_losses_work_under_torch_func():
    model = build_model("mlp", input_shape=(4,), num_classes=3, widths=(5,))
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    for name in list_losses():
        loss = build_loss(name)
        g = grad(lambda p: loss(functional_call(model, p, (x,)), y))(params)
        assert all(torch.isfinite(v).all() for v in g.values())


def test_errors():
    with pytest.raises(ValueError, match=r"unknown loss 'ce'.*cross_entropy, label_smoothing, mse"):
        build_loss("ce")
    with pytest.raises(ValueError, match=r"unknown reduction 'avg'.*mean, sum, none"):
        build_loss("mse", reduction="avg")
    with pytest.raises(TypeError, match=r"'smoothing'.*allowed: reduction$"):
        build_loss("cross_entropy", smoothing=0.1)
    with pytest.raises(ValueError, match=r"smoothing must be in \[0, 1\]"):
        build_loss("label_smoothing", smoothing=2.0)
    with pytest.raises(ValueError, match=r"output's shape"):
        build_loss("mse")(LOGITS, torch.zeros(2, 4, dtype=torch.float64))
