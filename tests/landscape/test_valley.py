"""Minimal-valley projection, line connectedness and the bisected projected path on a ring of minima."""
import math

import pytest
import torch
from torch import nn

from sgdscope import Problem, dense_hessian
from sgdscope.landscape import project_to_valley, projected_path, trace_along
from _oracles import FnModel, MeanOut


def ring(w):
    """(|w|^2 - 1)^2: a circular valley of minima of radius 1."""
    return ((w**2).sum() - 1) ** 2


def ring_problem():
    return Problem(FnModel(ring, [0.0, 0.0]), MeanOut(), [(torch.zeros(1, 1), torch.zeros(1))])


def on_circle(angle, radius=1.2):
    return radius * torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)


def test_projection_lands_in_the_valley_and_is_pure():
    p = ring_problem()
    before = p.theta()
    res = project_to_valley(p, on_circle(0.7, 1.5), lr=0.05, threshold=1e-6, max_steps=500)
    assert res.converged and res.loss < 1e-6 and 0 < res.steps < 500
    assert float(res.theta.norm()) == pytest.approx(1.0, abs=1e-3)
    assert math.atan2(float(res.theta[1]), float(res.theta[0])) == pytest.approx(0.7, abs=1e-9)  # radial GD
    assert torch.equal(p.theta(), before)
    stuck = project_to_valley(p, on_circle(0.7, 1.5), lr=0.05, threshold=1e-6, max_steps=3, momentum=0.5)
    assert not stuck.converged and stuck.steps == 3
    w = nn.Parameter(on_circle(0.7, 1.5))  # the same three steps by torch's heavy-ball SGD
    opt = torch.optim.SGD([w], lr=0.05, momentum=0.5)
    for _ in range(3):
        opt.zero_grad()
        ring(w).backward()
        opt.step()
    torch.testing.assert_close(stuck.theta, w.detach())


def test_bisection_inserts_midpoints_until_line_connected():
    p = ring_problem()
    calls = []

    def state_at(step):  # a "training run" that walks round the ring, 0.3 rad a step, off the valley floor
        calls.append(step)
        return on_circle(0.3 * step)

    path = projected_path(p, state_at, [0, 16], lr=0.05, threshold=1e-3, max_steps=1000)
    # projections stop at 1 <= |w|^2 < 1.032 (loss < 1e-3): then the chords of one step (0.3 rad) stay
    # below 1e-3 and those of two steps do not, whatever the exact radii: every step is needed
    assert path.steps.tolist() == list(range(17))
    assert path.connected.all() and path.converged.all()
    assert sorted(calls) == list(range(17))  # each state projected once
    assert path.thetas.shape == (17, 2) and (path.train_loss < 1e-3).all()
    torch.testing.assert_close(path.thetas.norm(dim=1), torch.ones(17, dtype=torch.float64), atol=0.02, rtol=0)

    coarse = projected_path(p, state_at, [0, 1, 2], lr=0.05, threshold=1e-3, max_steps=1000)
    assert coarse.steps.tolist() == [0, 1, 2] and coarse.connected.tolist() == [True, True]


def test_adjacent_states_that_are_not_connected_are_reported():
    p = ring_problem()
    path = projected_path(p, lambda s: on_circle(s * math.pi / 2), [0, 2], lr=0.05, threshold=1e-3, max_steps=1000)
    assert path.steps.tolist() == [0, 1, 2]
    assert path.connected.tolist() == [False, False]  # quarter turns: the chord leaves the valley
    with pytest.raises(ValueError, match="strictly increasing"):
        projected_path(p, on_circle, [3, 1], lr=0.05, threshold=1e-3, max_steps=10)


def test_trace_along_the_path_with_error_bars():
    p = ring_problem()
    thetas = torch.stack([on_circle(a, 1.0) for a in (0.0, 0.5, 1.0)])
    prof = trace_along(p, thetas, num_matvecs=200, generator=torch.Generator().manual_seed(0))
    exact = torch.stack([dense_hessian(p, t).trace for t in thetas])
    assert prof.estimate.shape == prof.stderr.shape == (3,) and prof.matvecs == 600
    assert ((prof.estimate - exact).abs() <= 5 * prof.stderr + 1e-9).all()
    torch.testing.assert_close(exact, torch.full((3,), 8.0, dtype=torch.float64))  # Tr H = 8 |w|^2 on the ring
