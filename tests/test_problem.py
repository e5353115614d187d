import pytest
import torch
from torch import nn

import sgdscope
from _oracles import assert_same_state, make_case, model_state


def test_theta_is_a_copy_in_parameter_order():
    model, x, y = make_case("mlp")
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    theta = p.theta()
    expected = torch.cat([q.detach().reshape(-1) for q in model.parameters()])
    assert torch.equal(theta, expected)
    theta.add_(1.0)
    assert torch.equal(p.theta(), expected)
    assert p.dim == sum(q.numel() for q in model.parameters())
    assert p.num_examples == len(y)


def test_selection_by_names_and_globs():
    model, x, y = make_case("mlp")
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), params=["2.*"])
    assert p.spec.names == ("2.weight", "2.bias")
    assert p.dim == 6 * 3 + 3
    with pytest.raises(ValueError, match="'fc9.*'.*available: 0.weight"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), params=["fc9.*"])


def test_bad_arguments_are_named():
    model, x, y = make_case("mlp")
    with pytest.raises(ValueError, match="bn_mode.*'batch'"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), bn_mode="batch")
    with pytest.raises(ValueError, match="reduction.*'none'"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(reduction="none"), (x, y))
    with pytest.raises(ValueError, match="at least one batch"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), [])
    with pytest.raises(TypeError, match="batch 0"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_loss_and_grad_match_autograd_on_the_whole_set(reduction):
    model, x, y = make_case("mlp", dropout=True)
    loss_fn = nn.CrossEntropyLoss(reduction=reduction)
    p = sgdscope.Problem(model, loss_fn, [(x[:5], y[:5]), (x[5:], y[5:])])
    loss, grad = p.loss_and_grad()
    model.eval()  # the reference: dropout off
    ref = loss_fn(model(x), y)
    ref_grad = torch.autograd.grad(ref, list(model.parameters()))
    model.train()
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(grad, torch.cat([g.reshape(-1) for g in ref_grad]))
    torch.testing.assert_close(p.loss(), ref.detach())


def test_inputs_are_cast_to_the_parameters_dtype():
    model, x, y = make_case("mlp")
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x.float(), y))
    assert p.batches[0][0].dtype == torch.float64


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_measurements_leave_the_model_untouched(kind, bn_mode):
    model, x, y = make_case(kind, bn=True, dropout=True)
    # a .grad field that must survive
    model(x).sum().backward()
    before = model_state(model)
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), [(x[:10], y[:10]), (x[10:], y[10:])], bn_mode=bn_mode)
    op = sgdscope.hessian_op(p)
    g = torch.Generator().manual_seed(0)
    p.loss()
    p.loss_and_grad()
    op @ torch.ones(p.dim, dtype=torch.float64)
    sgdscope.lanczos(op, 2, generator=g, tol=1e-2)
    sgdscope.hutchinson_trace(op, 3, generator=g)
    sgdscope.dense_hessian(p)
    sgdscope.spectral_density(op, num_runs=1, lanczos_steps=5, generator=g)
    assert_same_state(before, model_state(model))
    model.eval()
    before = model_state(model)
    p.loss()
    assert_same_state(before, model_state(model))


def test_bn_modes_differ_and_train_mode_uses_batch_statistics():
    model, x, y = make_case("mlp", bn=True)
    ev = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), bn_mode="eval").loss()
    tr = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), bn_mode="train").loss()
    model.eval()
    torch.testing.assert_close(ev, nn.functional.cross_entropy(model(x), y).detach())
    bn = model[1]
    h = model[0](x)
    z = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias
    ref = nn.functional.cross_entropy(model[3](model[2](z)), y)
    torch.testing.assert_close(tr, ref.detach())
    assert not torch.isclose(ev, tr)
