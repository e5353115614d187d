"""interpolate_loss, loss_along, losses_at and line_connected against direct evaluation."""
import pytest
import torch
from torch import nn

from sgdscope import Problem
from sgdscope.landscape import interpolate_loss, line_connected, loss_along, losses_at
from _oracles import FnModel, MeanOut


def fn_problem(fn, w0):
    model = FnModel(fn, w0)
    return Problem(model, MeanOut(), [(torch.zeros(2, 1), torch.zeros(2))])


def mlp_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Tanh(), nn.Linear(8, 3)).double()
    batches = [(torch.randn(10, 4, generator=g), torch.randint(0, 3, (10,), generator=g)) for _ in range(2)]
    return Problem(model, nn.CrossEntropyLoss(), batches)


def double_well(w):
    return ((w**2 - 1) ** 2).sum()


def test_barrier_on_a_double_well():
    p = fn_problem(double_well, [-1.0])
    res = interpolate_loss(p, torch.tensor([-1.0]), torch.tensor([1.0]), num_points=11)
    assert res.alphas.shape == res.losses.shape == (11,)
    assert res.crossed
    assert res.barrier == pytest.approx(1.0)  # loss 1 at w = 0 (alpha = 0.5), 0 at both ends
    assert res.height == pytest.approx(2.0)
    assert res.valley_floor == pytest.approx(0.0) and res.valley_alpha in (0.0, 1.0)
    direct = torch.stack([double_well(torch.tensor([-1.0 + 2 * a], dtype=torch.float64)) for a in res.alphas])
    torch.testing.assert_close(res.losses, direct)


def test_no_barrier_inside_one_well():
    p = fn_problem(double_well, [0.8])
    res = interpolate_loss(p, torch.tensor([0.7]), torch.tensor([1.6]), num_points=10)
    assert not res.crossed and res.barrier < 0
    assert res.height == pytest.approx(float(2 * res.losses[1:-1].max() - res.losses[0] - res.losses[-1]))
    assert 0 < res.valley_alpha < 1 and res.valley_floor < min(res.losses[0], res.losses[-1])
    i = int(torch.argmin(res.losses))
    assert res.valley_alpha == pytest.approx(float(res.alphas[i]))


def test_mlp_interpolation_equals_problem_loss_and_leaves_the_model_alone():
    p = mlp_problem()
    p.model.train()
    before = {k: v.clone() for k, v in p.model.state_dict().items()}
    rng = torch.random.get_rng_state()
    a = p.theta()
    b = a + 0.3 * torch.randn(p.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    res = interpolate_loss(p, a, b, num_points=7)
    direct = torch.stack([p.loss(torch.lerp(a, b, float(t))) for t in res.alphas])
    torch.testing.assert_close(res.losses, direct, rtol=1e-10, atol=1e-12)
    assert p.model.training and torch.equal(torch.random.get_rng_state(), rng)
    for k, v in p.model.state_dict().items():
        assert torch.equal(v, before[k])


def test_loss_along_equals_direct_evaluation():
    p = mlp_problem(1)
    theta = p.theta()
    d = torch.randn(p.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ks = [-2.0, -0.5, 0.0, 1.0, 3.0]
    got = loss_along(p, theta, d, ks)
    direct = torch.stack([p.loss(theta + k * d) for k in ks])
    torch.testing.assert_close(got, direct, rtol=1e-10, atol=1e-12)
    assert float(got[2]) == pytest.approx(float(p.loss()))


def test_models_that_do_not_vmap_fall_back_to_a_loop():
    def stubborn(w):
        if float(w.sum()) > 1e9:  # data-dependent control flow: not vmappable
            return w.sum()
        return (w**2).sum()

    p = fn_problem(stubborn, [0.0, 0.0])
    thetas = torch.tensor([[0.0, 1.0], [2.0, 0.5], [1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(losses_at(p, thetas, chunk_size=2), (thetas**2).sum(1))


def test_line_connected_and_errors():
    p = fn_problem(double_well, [1.0])
    assert line_connected(p, torch.tensor([0.9]), torch.tensor([1.1]), threshold=0.2)
    assert not line_connected(p, torch.tensor([-1.0]), torch.tensor([1.0]), threshold=0.2)
    with pytest.raises(ValueError, match="num_points must be >= 3"):
        interpolate_loss(p, torch.tensor([0.0]), torch.tensor([1.0]), num_points=2)
    with pytest.raises(ValueError, match=r"theta_a: expected a \(1,\) parameter vector, got shape \(2,\)"):
        interpolate_loss(p, torch.zeros(2), torch.zeros(2))
