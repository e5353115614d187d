"""The start of the negative-eigenvalue toy (noise paper Fig. 2a) is a true minimum: gradient descent
goes on until the gradient norm is below the tolerance, checked here against an independent gradient
and the Hessian; the net's x^2 activation keeps ReLU's per-unit rescaling symmetry."""
import pytest
import torch
from torch import nn

from sgdscope import Problem
from sgdscope.operators import dense_hessian
from sgdscope.toys import negative_eigenvalue_experiment
from sgdscope.toys.negative import _data, _descend, _net


def _problem(seed, n=200):
    gen = torch.Generator().manual_seed(seed)
    X, y = _data(n, 5, 2, 0.2, gen, torch.float64)
    model = _net(5, 8, 2, gen, torch.float64)
    return model, X, y


@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_descent_reaches_a_true_minimum(seed, one_thread):
    model, X, y = _problem(seed)
    loss_fn = nn.CrossEntropyLoss()
    steps, norm = _descend(model, loss_fn, X, y, lr=1.0, tol=1e-6, max_steps=20000)
    problem = Problem(model, loss_fn, [(X, y)])
    _, grad = problem.loss_and_grad(problem.theta())  # an independent gradient (torch.func, not .grad)
    assert 0 < steps < 20000 and norm <= 1e-6 and float(grad.norm()) <= 1e-6
    eig = torch.linalg.eigvalsh(dense_hessian(problem, problem.theta()).matrix)
    # a minimum: no negative curvature beyond rounding against the top eigenvalue, and degenerate directions
    assert eig[0] > -1e-5 * eig[-1] and int((eig.abs() < 1e-5 * eig[-1]).sum()) >= 8


def test_the_experiment_starts_at_its_minimum_and_says_when_it_does_not(one_thread):
    res = negative_eigenvalue_experiment(lrs=(0.05,), batch_sizes=(4, 8), steps=100, snapshots=1, snapshot_every=100,
                                         generator=torch.Generator().manual_seed(2))
    assert res.base_grad_norm <= 1e-6 and 0 < res.gd_steps < 20000
    assert res.base_negative_sum <= 0 and abs(res.base_negative_sum) < 1e-4
    with pytest.warns(RuntimeWarning, match=r"did not reach a minimum: gradient norm .* > grad_tol = 1e-06 after "
                                            r"gd_steps = 5 steps"):
        res = negative_eigenvalue_experiment(lrs=(0.05,), batch_sizes=(4, 8), steps=10, snapshots=1, snapshot_every=10,
                                             gd_steps=5, generator=torch.Generator().manual_seed(2))
    assert res.base_grad_norm > 1e-6 and res.gd_steps == 5
    with pytest.raises(ValueError, match="grad_tol > 0.*got 0"):
        negative_eigenvalue_experiment(grad_tol=0)


def test_the_square_activation_keeps_the_rescaling_symmetry():
    model, X, _ = _problem(3, n=20)
    before = model(X)
    with torch.no_grad():  # hidden unit 0: (w, b, v) -> (2 w, 2 b, v / 4)
        model[0].weight[0] *= 2
        model[0].bias[0] *= 2
        model[2].weight[:, 0] /= 4
    torch.testing.assert_close(model(X), before)
