import pytest
import torch
from torch import nn

import sgdscope
from sgdscope.linalg._basis import Basis
from _oracles import make_case, reference_hessian


def _problem(kind="cnn", seed=0):
    model, x, y = make_case(kind, seed=seed, n=32)
    return model, x, y, sgdscope.Problem(model, nn.CrossEntropyLoss(), [(x[:16], y[:16]), (x[16:], y[16:])])


def _explicit_residuals(H, res):
    return torch.linalg.vector_norm(H @ res.vectors - res.vectors * res.values, dim=0)


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_extreme_eigenpairs_match_eigh(which):
    model, x, y, p = _problem()
    H = reference_hessian(model, p.batches)
    ev = torch.linalg.eigvalsh(H)
    ref = {"LA": ev.flip(0)[:4], "SA": ev[:4], "LM": ev[ev.abs().argsort(descending=True)][:4]}[which]
    res = sgdscope.lanczos(sgdscope.hessian_op(p), 4, which=which, tol=1e-8, generator=torch.Generator().manual_seed(0))
    assert res.converged
    torch.testing.assert_close(res.values, ref, rtol=1e-9, atol=1e-12)
    # Ritz invariants: orthonormal vectors, residuals that are the true ones and meet the tolerance
    torch.testing.assert_close(res.vectors.T @ res.vectors, torch.eye(4, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(res.residuals, _explicit_residuals(H, res), atol=1e-10, rtol=1e-6)
    assert (res.residuals <= 1e-8 * ref.abs()[0]).all()
    assert res.matvecs < p.dim


def test_looser_tolerance_costs_fewer_products_and_still_bounds_residuals():
    model, x, y, p = _problem()
    H = reference_hessian(model, p.batches)
    g = lambda: torch.Generator().manual_seed(3)
    loose = sgdscope.lanczos(sgdscope.hessian_op(p), 5, tol=1e-2, generator=g())
    tight = sgdscope.lanczos(sgdscope.hessian_op(p), 5, tol=1e-9, generator=g())
    assert loose.matvecs < tight.matvecs
    assert (_explicit_residuals(H, loose) <= 1e-2 * loose.values[0] * (1 + 1e-6)).all()


def test_single_vector_start_is_lanczos():
    """Expanding by the Ritz residual spans the Krylov space: T = Q^T H Q is tridiagonal and
    H Q_m = Q_m T_m + beta q_{m+1} e_m^T (the Lanczos relation)."""
    model, x, y, p = _problem("mlp")
    H = reference_hessian(model, p.batches)
    op = sgdscope.dense_op(H)
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="not converged"):
        res = sgdscope.lanczos(op, 2, tol=1e-14, max_iter=12, v0=v)
    basis = Basis(op, 12)
    basis.add(v)
    while basis.m < 12:
        basis.add(basis.HQ[:, basis.m - 1])
    T = basis.T[:12, :12]
    off = T - torch.diag(torch.diagonal(T)) - torch.diag(torch.diagonal(T, 1), 1) - torch.diag(torch.diagonal(T, -1), -1)
    assert off.abs().max() < 1e-10 * T.abs().max()
    torch.testing.assert_close(basis.Q[:, :12].T @ basis.Q[:, :12], torch.eye(12, dtype=torch.float64), atol=1e-12, rtol=0)
    R = H @ basis.Q[:, :11] - basis.Q[:, :11] @ T[:11, :11]
    assert R[:, :10].abs().max() < 1e-10  # only the last column leaks out of the space
    # the Ritz values after 12 steps are those of the residual-expanded run with the same start
    top2 = torch.linalg.eigvalsh(T).flip(0)[:2]
    torch.testing.assert_close(res.values, top2, rtol=1e-8, atol=1e-12)


def test_known_spectrum_and_degenerate_restart():
    D = 60
    diag = torch.cat([torch.tensor([10.0, 9.0, 8.0]), torch.linspace(-1, 1, D - 3)]).double()
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    A = Q @ torch.diag(diag) @ Q.T
    res = sgdscope.lanczos(sgdscope.dense_op(A), 3, tol=1e-10, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.values, torch.tensor([10.0, 9.0, 8.0], dtype=torch.float64))
    # an exact invariant start (an eigenvector) forces a random restart, which still finds all 3
    res = sgdscope.lanczos(sgdscope.dense_op(A), 3, tol=1e-10, v0=Q[:, 1], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.values, torch.tensor([10.0, 9.0, 8.0], dtype=torch.float64))
    # the whole space: exact
    res = sgdscope.lanczos(sgdscope.dense_op(torch.diag(diag[:5])), 5, tol=1e-12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(res.values, diag[:5].sort(descending=True).values)


def test_warm_start_after_a_small_move_needs_fewer_products():
    model, x, y, p = _problem("cnn")
    g = torch.Generator().manual_seed(0)
    cold0 = sgdscope.lanczos(sgdscope.hessian_op(p), 5, tol=1e-4, generator=g)
    theta = p.theta()
    loss, grad = p.loss_and_grad(theta)
    moved = theta - 0.02 * grad  # one small gradient step
    op = sgdscope.hessian_op(p, moved)
    cold = sgdscope.lanczos(op, 5, tol=1e-4, generator=torch.Generator().manual_seed(1))
    warm = sgdscope.lanczos(sgdscope.hessian_op(p, moved), 5, tol=1e-4, v0=cold0.vectors)
    torch.testing.assert_close(warm.values, cold.values, rtol=1e-3, atol=1e-6)
    assert warm.converged and warm.matvecs < cold.matvecs


def test_warm_start_block_is_lanczos_from_the_sum_of_its_columns():
    D = 50
    diag = torch.cat([torch.tensor([10.0, 9.5, 9.0, 4.0]), torch.linspace(-1, 1, D - 4)]).double()
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    A = sgdscope.dense_op(Q @ torch.diag(diag) @ Q.T)
    # the exact top-3 eigenvectors (scaled, signs flipped): done in exactly 3 products
    exact = Q[:, :3] * torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    res = sgdscope.lanczos(A, 3, tol=1e-10, v0=exact)
    assert res.converged and res.matvecs == 3
    torch.testing.assert_close(res.values, diag[:3])
    # a perturbed block gives the same run as a single start at the sum of its unit columns
    block = Q[:, :3] + 0.1 * torch.randn(D, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a = sgdscope.lanczos(A, 3, tol=1e-8, v0=block)
    b = sgdscope.lanczos(A, 3, tol=1e-8, v0=(block / block.norm(dim=0)).sum(1))
    assert a.matvecs == b.matvecs and a.converged
    torch.testing.assert_close(a.values, b.values, rtol=1e-12, atol=0)
    torch.testing.assert_close(a.values, diag[:3])


def test_deterministic_under_a_generator():
    _, _, _, p = _problem("mlp")
    a = sgdscope.lanczos(sgdscope.hessian_op(p), 3, tol=1e-6, generator=torch.Generator().manual_seed(5))
    b = sgdscope.lanczos(sgdscope.hessian_op(p), 3, tol=1e-6, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.values, b.values) and torch.equal(a.vectors, b.vectors) and a.matvecs == b.matvecs


def test_float32_operator():
    model, x, y, p = _problem("mlp")
    H = reference_hessian(model, p.batches)
    res = sgdscope.lanczos(sgdscope.dense_op(H.float()), 3, tol=1e-4, generator=torch.Generator().manual_seed(0))
    assert res.values.dtype == torch.float32 and res.vectors.dtype == torch.float32
    torch.testing.assert_close(res.values.double(), torch.linalg.eigvalsh(H).flip(0)[:3], rtol=1e-4, atol=1e-6)


def test_errors_and_non_convergence():
    A = torch.diag(torch.arange(1.0, 31.0, dtype=torch.float64))
    op = sgdscope.dense_op(A)
    with pytest.raises(ValueError, match="which.*'BE'"):
        sgdscope.lanczos(op, 2, which="BE")
    with pytest.raises(ValueError, match=r"k must be in \[1, D=30\], got 31"):
        sgdscope.lanczos(op, 31)
    with pytest.raises(ValueError, match="v0 must have shape"):
        sgdscope.lanczos(op, 2, v0=torch.ones(5, dtype=torch.float64))
    with pytest.warns(RuntimeWarning, match="not converged"):
        res = sgdscope.lanczos(op, 3, tol=1e-12, max_iter=4, generator=torch.Generator().manual_seed(0))
    assert not res.converged and res.matvecs == 4
