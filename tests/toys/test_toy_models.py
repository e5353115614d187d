"""The toy losses' hand-written derivatives, trace and determinant against autograd."""
import pytest
import torch
from torch.func import grad, hessian, jacrev, vmap

from sgdscope.toys import four_d, trace_vs_det, valley_with_slope

TOYS = [four_d, trace_vs_det, valley_with_slope(0.3)]


@pytest.mark.parametrize("toy", TOYS, ids=lambda t: t.name)
def test_derivatives_equal_autograd(toy):
    theta = torch.randn(7, toy.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(toy.grad(theta), vmap(grad(toy.loss))(theta))
    H = vmap(hessian(toy.loss))(theta)
    torch.testing.assert_close(toy.hessian(theta), H)
    torch.testing.assert_close(toy.curvature_grad(theta), vmap(jacrev(toy.curvatures))(theta))
    torch.testing.assert_close(toy.trace_grad(theta), vmap(grad(lambda t: toy.trace(t)))(theta))


@pytest.mark.parametrize("toy", TOYS, ids=lambda t: t.name)
def test_trace_and_det_are_those_of_the_hessian_on_the_valley_floor(toy):
    theta = torch.randn(7, toy.dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    floor = theta.clone()
    floor[:, : toy.n] = 0  # the minimum below theta (eq. 1)
    H = vmap(hessian(toy.loss))(floor)
    torch.testing.assert_close(toy.trace(theta), torch.diagonal(H, dim1=-2, dim2=-1).sum(-1))
    evals = torch.linalg.eigvalsh(H)[:, -toy.n :]  # the non-degenerate spectrum
    torch.testing.assert_close(toy.det(theta), evals.prod(-1))
    # the non-degenerate block is diag(lambda) everywhere, on or off the floor
    block = vmap(hessian(toy.loss))(theta)[:, : toy.n, : toy.n]
    torch.testing.assert_close(torch.linalg.det(block), toy.det(theta))


def test_batch_shapes_and_errors():
    th = torch.zeros(3, 5, 4, dtype=torch.float64)
    assert four_d.loss(th).shape == (3, 5)
    assert four_d.hessian(th).shape == (3, 5, 4, 4)
    assert trace_vs_det.curvature_grad(th).shape == (3, 5, 2, 4)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        valley_with_slope().loss(th)
