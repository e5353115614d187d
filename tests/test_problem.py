import pytest
import torch
from torch import nn

import sgdscope
from _oracles import assert_same_state, make_case, model_state, reference_hessian


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
    ref = loss_fn(model(x), y) / (len(y) if reduction == "sum" else 1)  # always the mean over the examples
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


def test_check_theta_places_and_names_wrong_shapes():
    model, x, y = make_case("mlp")
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    D = p.dim
    assert torch.equal(p.check_theta(None), p.theta())
    t = torch.ones(D, dtype=torch.float32, requires_grad=True)
    got = p.check_theta(t)
    assert got.dtype == torch.float64 and got.device == p.device and not got.requires_grad
    assert torch.equal(got, torch.ones(D, dtype=torch.float64))
    same = torch.zeros(D, dtype=torch.float64)
    assert p.check_theta(same).data_ptr() == same.data_ptr()  # no copy when nothing changes
    assert torch.equal(p.check_theta([0.5] * D), torch.full((D,), 0.5, dtype=torch.float64))
    rows = p.check_theta(torch.zeros(3, D), rows=True)
    assert rows.shape == (3, D) and rows.dtype == torch.float64
    with pytest.raises(ValueError, match=rf"theta_b: expected a \({D},\) parameter vector, got shape \(3, {D}\)"):
        p.check_theta(torch.zeros(3, D), "theta_b")
    with pytest.raises(ValueError, match=rf"thetas: expected \(P, {D}\) rows of parameter vectors, got shape \({D},\)"):
        p.check_theta(torch.zeros(D), "thetas", rows=True)
    with pytest.raises(ValueError, match=rf"thetas: expected \(P, {D}\) rows.*got shape None"):
        p.check_theta(None, "thetas", rows=True)
    with pytest.raises(ValueError, match=rf"theta: expected a \({D},\) parameter vector, got shape \({D - 1},\)"):
        p.loss(torch.zeros(D - 1))
    with pytest.raises(ValueError, match=rf"expected a \({D},\) parameter vector, got shape \(2,\)"):
        sgdscope.hessian_op(p, torch.zeros(2))


def test_hessian_op_keeps_a_copy_of_the_given_theta():
    model, x, y = make_case("mlp")
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    theta = p.theta()
    op = sgdscope.hessian_op(p, theta)
    theta.add_(0.5)  # an in-place step on the caller's tensor, before the first product
    assert torch.equal(op.theta, p.theta())
    v = torch.ones(p.dim, dtype=torch.float64)
    torch.testing.assert_close(op @ v, reference_hessian(model, [(x, y)]) @ v)


def test_place_checks_and_moves_a_batch():
    model, x, y = make_case("mlp")
    p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    xb, yb = p.place([x.float(), y])
    assert xb.dtype == torch.float64 and torch.equal(yb, y)
    with pytest.raises(ValueError, match="batch: 24 inputs but 23 targets"):
        p.place((x, y[:-1]))
