import pytest
import torch

from sgdscope.noise import curvature_spread, stability


@pytest.mark.parametrize("name", ["mlp", "cnn", "bn"])
def test_spread_equals_dense_per_example_hessians(name, request):
    case = request.getfixturevalue(name)
    p = case.problem()
    v = torch.randn(p.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    e = v / v.norm()
    s = curvature_spread(p, 3 * v, (case.X, case.Y), chunk_size=4)  # scale of v does not matter
    h = torch.stack([e @ case.hessian(case.X[i : i + 1], case.Y[i : i + 1]) @ e for i in range(len(case.Y))])
    torch.testing.assert_close(s.samples, h, atol=1e-12, rtol=1e-10)
    assert s.mean == pytest.approx(float(h.mean()), rel=1e-10)
    assert s.var == pytest.approx(float(h.var(unbiased=False)), rel=1e-9)
    assert s.std == pytest.approx(float(h.var(unbiased=False)) ** 0.5, rel=1e-9)
    assert s.mean == pytest.approx(float(e @ case.hessian() @ e), rel=1e-9)  # e^T H e of the batch
    assert s.n == len(case.Y)


def test_spread_checks(bn, mlp):
    v = torch.ones(bn.problem().dim, dtype=torch.float64)
    with pytest.raises(ValueError, match="bn_mode='train'"):
        curvature_spread(bn.problem(bn_mode="train"), v, (bn.X, bn.Y))
    with pytest.raises(ValueError, match=r"v: expected a \(51,\) parameter vector, got shape \(53,\)"):
        curvature_spread(mlp.problem(), v, (mlp.X, mlp.Y))
    with pytest.raises(ValueError, match="nonzero"):
        curvature_spread(mlp.problem(), torch.zeros(mlp.problem().dim, dtype=torch.float64), (mlp.X, mlp.Y))


def test_stability_by_hand():
    # (1 - 0.1 * 5)^2 + 20 * 0.1^2 * (100 - 10) / (10 * 99)
    assert stability(0.1, 10, 100, 5.0, 20.0) == pytest.approx(0.25 + 0.2 * 90 / 990)
    assert stability(0.1, 100, 100, 5.0, 20.0) == pytest.approx(0.25)  # full batch: no noise term
    assert stability(0.5, 1, 2, 4.0, 1.0) == pytest.approx(1.0 + 0.25)  # lr = 2 / lambda: the GD edge, plus noise
    lam = torch.tensor([1.0, 10.0, 30.0], dtype=torch.float64)
    torch.testing.assert_close(stability(0.1, 10, 100, lam, 20.0), (1 - 0.1 * lam) ** 2 + 20 * 0.01 * 90 / 990)
    with pytest.raises(ValueError, match=r"batch_size S must be in \[1, N=100\]"):
        stability(0.1, 101, 100, 5.0, 1.0)
    with pytest.raises(ValueError, match="N\\) must be >= 2"):
        stability(0.1, 1, 1, 5.0, 1.0)
