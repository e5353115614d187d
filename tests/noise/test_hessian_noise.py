import pytest
import torch

from sgdscope.noise import hessian_noise_cosine


def explicit(case):
    """CS(H, C) from the dense Hessian and the explicit D x D covariance of per-example gradients."""
    P = case.example_gradients()
    Dc = P - P.mean(0)
    C = Dc.T @ Dc / len(P)  # 1/n; CS does not depend on this scale
    H = case.hessian()
    tr_hc, tr_h2, tr_c2 = (H * C).sum(), (H * H).sum(), (C * C).sum()
    return float(tr_hc / (tr_h2 * tr_c2).sqrt()), float(tr_hc), float(tr_h2), float(tr_c2)


@pytest.mark.parametrize("name", ["mlp", "cnn", "bn"])
def test_exact_equals_explicit_matrices(name, request):
    case = request.getfixturevalue(name)
    cs, tr_hc, tr_h2, tr_c2 = explicit(case)
    r = hessian_noise_cosine(case.problem(), method="exact")
    assert r.estimate == pytest.approx(cs, rel=1e-10)
    assert float(r) == r.estimate and r.stderr == 0.0
    assert r.tr_hc.estimate == pytest.approx(tr_hc, rel=1e-10)
    assert r.tr_h2.estimate == pytest.approx(tr_h2, rel=1e-10)
    assert r.tr_c2.estimate == pytest.approx(tr_c2, rel=1e-10)
    assert r.n == len(case.Y) and r.method == "exact" and -1 <= r.estimate <= 1


def test_estimate_converges_within_its_error(cnn):
    cs, tr_hc, _, tr_c2 = explicit(cnn)
    p = cnn.problem()
    errors = []
    for probes in (50, 800):
        r = hessian_noise_cosine(p, method="estimate", num_matvecs=probes, generator=torch.Generator().manual_seed(7))
        assert r.tr_hc.estimate == pytest.approx(tr_hc, rel=1e-10) and r.tr_hc.stderr == 0.0  # all n rows: exact
        assert r.tr_c2.estimate == pytest.approx(tr_c2, rel=1e-10)
        assert 0 < r.stderr and abs(r.estimate - cs) < 4 * r.stderr
        assert r.matvecs == probes + len(cnn.Y)
        errors.append(r.stderr)
    assert errors[1] < errors[0] / 2  # ~ 1/sqrt(probes)


def test_estimate_with_a_subset_of_rows(mlp):
    cs = explicit(mlp)[0]
    r = hessian_noise_cosine(
        mlp.problem(), num_matvecs=400, hc_samples=8, generator=torch.Generator().manual_seed(3), block_size=3
    )
    assert r.tr_hc.stderr > 0 and len(r.tr_hc.samples) == 8
    assert abs(r.estimate - cs) < 4 * r.stderr


def test_bad_arguments(mlp, bn):
    with pytest.raises(ValueError, match="method must be one of"):
        hessian_noise_cosine(mlp.problem(), method="dense")
    with pytest.raises(TypeError, match="torch.Generator"):
        hessian_noise_cosine(mlp.problem(), method="estimate")
    with pytest.raises(ValueError, match=r"hc_samples must be in \[2, n=12\]"):
        hessian_noise_cosine(mlp.problem(), hc_samples=13, generator=torch.Generator())
    with pytest.raises(ValueError, match="bn_mode='train'"):
        hessian_noise_cosine(bn.problem(bn_mode="train"), method="exact")


def test_undefined_when_all_gradients_agree(mlp):
    X, Y = torch.zeros(5, 4, dtype=torch.float64), torch.zeros(5, dtype=torch.long)  # identical examples
    with pytest.raises(ValueError, match=r"Tr\(C\^2\)=0"):
        hessian_noise_cosine(mlp.problem().subproblem([(X, Y)]), method="exact")
