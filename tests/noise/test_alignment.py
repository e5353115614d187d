import pytest
import torch

from sgdscope.noise import cosine, gradient_hessian_alignment, minibatch_indices, per_example_gradients


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_alignment_equals_dense_quadratic_form(name, request):
    case = request.getfixturevalue(name)
    p = case.problem()
    N = len(case.Y)
    H = case.hessian()
    evals, evecs = torch.linalg.eigh(H)
    V = evecs[:, -3:]
    sizes = [1, 4, N]
    a = gradient_hessian_alignment(
        p,
        (case.X, case.Y),
        batch_sizes=sizes,
        num_batches=6,
        generator=torch.Generator().manual_seed(5),
        hessian_vectors=V,
    )
    # the reference draws the same mini-batches (same generator, same order; M = N draws nothing)
    P = per_example_gradients(p, (case.X, case.Y))
    g = torch.Generator().manual_seed(5)
    for j, M in enumerate(sizes):
        idx = minibatch_indices(N, batch_size=M, num_batches=1 if M == N else 6, generator=g)
        G = P[idx].mean(1)
        expected = torch.einsum("ld,de,le->l", G, H, G) / (G * G).sum(1)
        torch.testing.assert_close(a.samples[j], expected, atol=1e-12, rtol=1e-10)
        std = expected.std() if len(expected) > 1 else torch.zeros((), dtype=expected.dtype)
        torch.testing.assert_close(a.mean[j], expected.mean(), atol=1e-12, rtol=1e-10)
        torch.testing.assert_close(a.std[j], std, atol=1e-12, rtol=1e-9)
        share = ((G @ V) ** 2).sum(1) / (G * G).sum(1)
        torch.testing.assert_close(a.overlap_samples[j], share, atol=1e-12, rtol=1e-10)
        assert ((expected >= evals[0] - 1e-12) & (expected <= evals[-1] + 1e-12)).all()  # a Rayleigh quotient
    assert a.batch_sizes == tuple(sizes) and len(a.samples[-1]) == 1
    assert float(a.std[-1]) == 0.0


def test_alignment_without_vectors_on_problem_batches(mlp):
    p = mlp.problem()
    a = gradient_hessian_alignment(p, batch_sizes=[12], num_batches=3)  # M = N: no generator needed
    g = p.loss_and_grad()[1]
    H = mlp.hessian()
    assert float(a.mean[0]) == pytest.approx(float(g @ H @ g / (g @ g)), rel=1e-10)
    assert a.overlap_mean is None and a.overlap_samples is None


def test_cosine():
    a = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    b = torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    assert float(cosine(a, b)) == pytest.approx(2**-0.5)
    assert float(cosine(a, -a)) == pytest.approx(-1.0)
    Gs = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cs = cosine(Gs[:-1], Gs[1:])  # Walk eq. 5 along a sequence
    expected = torch.stack([Gs[t - 1] @ Gs[t] / (Gs[t - 1].norm() * Gs[t].norm()) for t in range(1, 6)])
    torch.testing.assert_close(cs, expected)
    assert torch.isnan(cosine(a, torch.zeros(3, dtype=torch.float64)))
    with pytest.raises(ValueError, match="different lengths"):
        cosine(a, Gs[0])
