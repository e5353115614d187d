import pytest
import torch
from torch import nn

import sgdscope
from _oracles import make_case, reference_hessian


def _spd_like(D=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=torch.float64))
    ev = torch.cat([torch.tensor([20.0, 8.0, 5.0]), torch.randn(D - 3, generator=g, dtype=torch.float64) * 0.5])
    return Q @ torch.diag(ev) @ Q.T


def test_exact_where_the_estimators_have_no_variance():
    d = torch.linspace(-2, 3, 25, dtype=torch.float64)
    op = sgdscope.dense_op(torch.diag(d))
    g = torch.Generator().manual_seed(0)
    tr = sgdscope.hutchinson_trace(op, 5, generator=g)  # z_i^2 = 1
    assert tr.estimate == pytest.approx(float(d.sum())) and tr.stderr == pytest.approx(0, abs=1e-12)
    fr = sgdscope.frobenius_sq(op, 5, generator=g)
    assert fr.estimate == pytest.approx(float((d**2).sum()))
    A = _spd_like(12)
    hpp = sgdscope.hutchpp_trace(sgdscope.dense_op(A), 3 * 12 + 2, generator=g)  # sketch spans everything
    assert hpp.estimate == pytest.approx(float(torch.trace(A)), rel=1e-10)


@pytest.mark.parametrize("estimator,exact", [
    (sgdscope.hutchinson_trace, lambda A: torch.trace(A)),
    (sgdscope.hutchpp_trace, lambda A: torch.trace(A)),
    (sgdscope.frobenius_sq, lambda A: (A**2).sum()),
])
def test_standard_errors_are_calibrated(estimator, exact):
    """Over many seeds the z-scores (estimate - exact) / stderr have mean ~0 and spread ~1."""
    A = _spd_like()
    op = sgdscope.dense_op(A)
    z = torch.tensor([
        (e.estimate - float(exact(A))) / e.stderr
        for e in (estimator(op, 30, generator=torch.Generator().manual_seed(s)) for s in range(200))
    ])
    assert abs(float(z.mean())) < 0.3
    assert 0.75 < float(z.std()) < 1.35


def test_hutchpp_beats_hutchinson_on_a_spiked_spectrum():
    A = _spd_like()
    op = sgdscope.dense_op(A)
    err = lambda est: torch.tensor([abs(est(op, 30, generator=torch.Generator().manual_seed(s)).estimate - float(torch.trace(A))) for s in range(50)]).mean()
    assert err(sgdscope.hutchpp_trace) < 0.5 * err(sgdscope.hutchinson_trace)


def test_hessian_trace_and_frobenius_within_a_few_standard_errors():
    model, x, y = make_case("cnn", n=20)
    H = reference_hessian(model, [(x, y)])
    op = sgdscope.hessian_op(sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y)))
    g = torch.Generator().manual_seed(0)
    for est, exact in [
        (sgdscope.hutchinson_trace(op, 200, generator=g, block_size=50), torch.trace(H)),
        (sgdscope.hutchpp_trace(op, 150, generator=g, block_size=25), torch.trace(H)),
        (sgdscope.frobenius_sq(op, 200, generator=g, block_size=50), (H**2).sum()),
    ]:
        assert abs(est.estimate - float(exact)) < 4 * est.stderr
        assert est.matvecs in (150, 200)


def test_errors_name_the_value():
    op = sgdscope.dense_op(torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="at least 2.*got 1"):
        sgdscope.hutchinson_trace(op, 1)
    with pytest.raises(ValueError, match="block_size.*got 0"):
        sgdscope.frobenius_sq(op, 4, block_size=0)
