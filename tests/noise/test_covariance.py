import itertools

import pytest
import torch

import sgdscope.noise._gram as gram_module
from sgdscope.noise import covariance_spectrum, per_example_gradients, projection_ratio, projection_ratio_from_rows, uncentred_moment_top


def explicit_cov(G):
    """The D x D covariance (1/L) sum (g_l - gbar)(g_l - gbar)^T and its eigh, descending."""
    Dc = G - G.mean(0)
    C = Dc.T @ Dc / len(G)
    vals, vecs = torch.linalg.eigh(C)
    return C, vals.flip(0), vecs.flip(1)


def assert_same_vectors(A, B, atol=1e-8):
    """Unit columns equal up to sign."""
    signs = torch.sign((A * B).sum(0))
    torch.testing.assert_close(A * signs, B, atol=atol, rtol=0)


@pytest.fixture
def rows(cnn):
    return per_example_gradients(cnn.problem(), (cnn.X, cnn.Y))  # (10, 47)


def test_gram_spectrum_equals_explicit_covariance(rows):
    L = len(rows)
    C, vals, vecs = explicit_cov(rows)
    s = covariance_spectrum(rows, k=4)
    torch.testing.assert_close(s.values, vals[:4], atol=1e-12, rtol=1e-10)
    assert s.lambda_1 == pytest.approx(float(vals[0]), rel=1e-10)
    assert s.lambda_star == pytest.approx(float(vals[L - 2]), rel=1e-8)
    assert s.lambda_star > 1e-8 * s.lambda_1 and abs(float(s.spectrum[L - 1])) < 1e-12 * s.lambda_1  # rank L-1
    assert s.trace == pytest.approx(float(torch.trace(C)), rel=1e-10)
    assert s.ratio == pytest.approx(float(vals[L - 2] / vals[0]), rel=1e-8)
    torch.testing.assert_close(s.spectrum[: L - 1], vals[: L - 1], atol=1e-12, rtol=1e-8)
    assert s.vectors.shape == (rows.shape[1], 4)
    assert_same_vectors(s.vectors, vecs[:, :4])
    torch.testing.assert_close(C @ s.vectors, s.vectors * s.values, atol=1e-12, rtol=0)  # K e = lambda e
    torch.testing.assert_close(torch.linalg.vector_norm(s.vectors, dim=0), torch.ones(4, dtype=rows.dtype))
    assert (s.L, s.M, s.N, s.scale) == (L, 1, None, 1.0)
    assert (s.lambda_1_per_example, s.trace_per_example) == (s.lambda_1, s.trace)  # M = 1: c = 1


def test_minibatch_rows_give_the_papers_KM_and_c_times_it_per_example(mlp):
    """K^M = (1/L) sum_l (g_l - gbar)(g_l - gbar)^T of App. C, built by hand from L mini-batch
    gradients (autograd on a copy of the model), is the primary scale; c K^M the per-example one."""
    N, M, L = 12, 3, 8
    g = torch.Generator().manual_seed(7)
    idx = [torch.randperm(N, generator=g)[:M] for _ in range(L)]
    G = torch.stack([mlp.gradient(mlp.X[i], mlp.Y[i]) for i in idx]).double()  # (L, D)
    gbar = sum(G) / L
    KM = sum(torch.outer(r - gbar, r - gbar) for r in G) / L  # D x D, float64
    vals = torch.linalg.eigvalsh(KM).flip(0)
    s = covariance_spectrum(G, k=3, batch_size=M, population=N)
    torch.testing.assert_close(s.values, vals[:3], atol=1e-14, rtol=1e-10)
    torch.testing.assert_close(s.spectrum[: L - 1], vals[: L - 1], atol=1e-14, rtol=1e-8)
    assert s.lambda_1 == pytest.approx(float(vals[0]), rel=1e-10)
    assert s.lambda_star == pytest.approx(float(vals[L - 2]), rel=1e-8)
    assert s.ratio == pytest.approx(float(vals[L - 2] / vals[0]), rel=1e-8)
    assert s.trace == pytest.approx(float(torch.trace(KM)), rel=1e-10)
    assert s.trace == pytest.approx(float(sum((r - gbar) @ (r - gbar) for r in G) / L), rel=1e-10)
    c = M * (N - 1) / (N - M)  # 11/3
    assert (s.scale, s.L, s.M, s.N) == (pytest.approx(c, rel=1e-15), L, M, N)
    assert s.lambda_1_per_example == pytest.approx(c * float(vals[0]), rel=1e-10)
    assert s.trace_per_example == pytest.approx(c * float(torch.trace(KM)), rel=1e-10)
    # M and N only set the per-example factor: without N it is c = M, and K^M is unchanged
    plain = covariance_spectrum(G, k=3, batch_size=M)
    torch.testing.assert_close(plain.spectrum, s.spectrum, atol=0, rtol=0)
    assert plain.trace == s.trace and plain.scale == M
    assert plain.lambda_1_per_example == pytest.approx(M * float(vals[0]), rel=1e-10)
    assert plain.trace_per_example == pytest.approx(M * float(torch.trace(KM)), rel=1e-10)


def test_blockwise_gram_and_float32(rows, monkeypatch):
    ref = covariance_spectrum(rows, k=3)
    monkeypatch.setattr(gram_module, "_BLOCK", 7)
    s = covariance_spectrum(rows, k=3)
    torch.testing.assert_close(s.values, ref.values, atol=1e-12, rtol=1e-10)
    s32 = covariance_spectrum(rows.float(), k=3)
    assert s32.vectors.dtype == torch.float32
    torch.testing.assert_close(s32.values, ref.values.float(), rtol=1e-4, atol=1e-7)


def test_minibatch_normalisation_is_exact_over_all_minibatches(mlp):
    """Enumerating every size-M subset of N examples: the mean's covariance K^M is (N-M)/(M(N-1)) K,
    so its per-example estimate c K^M with population N equals the per-example K exactly."""
    N, M = 7, 3
    P = per_example_gradients(mlp.problem(), (mlp.X[:N], mlp.Y[:N]))
    subsets = torch.tensor(list(itertools.combinations(range(N), M)))
    G = P[subsets].mean(1)  # (35, D), every mini-batch once
    per_ex = covariance_spectrum(P, k=4)
    mini = covariance_spectrum(G, k=4, batch_size=M, population=N)
    c = M * (N - 1) / (N - M)
    assert mini.scale == pytest.approx(c)
    torch.testing.assert_close(mini.values, per_ex.values / c, atol=1e-12, rtol=1e-9)  # K^M: the paper's scale
    torch.testing.assert_close(mini.values * mini.scale, per_ex.values, atol=1e-12, rtol=1e-9)
    assert mini.lambda_1_per_example == pytest.approx(per_ex.lambda_1, rel=1e-10)
    assert mini.trace_per_example == pytest.approx(per_ex.trace, rel=1e-10)
    assert_same_vectors(mini.vectors, per_ex.vectors)
    torch.testing.assert_close(mini.spectrum[: N - 1] * c, per_ex.spectrum[: N - 1], atol=1e-12, rtol=1e-9)
    # without a population, c = M: the same K^M, a per-example estimate smaller by (N-1)/(N-M)
    plain = covariance_spectrum(G, k=4, batch_size=M)
    torch.testing.assert_close(plain.values, mini.values, atol=0, rtol=0)
    assert plain.lambda_1_per_example * (N - 1) / (N - M) == pytest.approx(per_ex.lambda_1, rel=1e-9)


def test_projection_ratio():
    g = torch.Generator().manual_seed(0)
    V = torch.randn(30, 4, generator=g, dtype=torch.float64)  # not orthonormal
    x = torch.randn(30, generator=g, dtype=torch.float64)
    P = V @ torch.linalg.solve(V.T @ V, V.T)
    assert float(projection_ratio(x, V)) == pytest.approx(float(x.norm() / (P @ x).norm()), rel=1e-12)
    assert float(projection_ratio(V @ torch.ones(4, dtype=torch.float64), V)) == pytest.approx(1.0, rel=1e-12)
    X = torch.randn(5, 30, generator=g, dtype=torch.float64)
    torch.testing.assert_close(projection_ratio(X, V), X.norm(dim=1) / (X @ P).norm(dim=1))
    with pytest.raises(ValueError, match="same D"):
        projection_ratio(x[:10], V)


def test_uncentred_moment_equals_explicit(rows, mlp):
    L = len(rows)
    Gm = rows.T @ rows / L  # (1/L) sum g g^T
    C, _, _ = explicit_cov(rows)
    gbar = rows.mean(0)
    torch.testing.assert_close(Gm, C + torch.outer(gbar, gbar), atol=1e-12, rtol=0)  # Walk App. B
    vals, vecs = torch.linalg.eigh(Gm)
    m = uncentred_moment_top(rows, k=3)
    torch.testing.assert_close(m.values, vals.flip(0)[:3], atol=1e-12, rtol=1e-10)
    assert_same_vectors(m.vectors, vecs.flip(1)[:, :3])
    assert m.lambda_1 == pytest.approx(float(vals[-1]), rel=1e-10)
    assert m.trace == pytest.approx(float(torch.trace(Gm)), rel=1e-10)
    assert m.mean_sq_norm == pytest.approx(float(gbar @ gbar), rel=1e-12)
    # from all mini-batches of M of N with the population factor: the same K + g g^T (per-example scale)
    N, M = 7, 2
    P = per_example_gradients(mlp.problem(), (mlp.X[:N], mlp.Y[:N]))
    G = P[torch.tensor(list(itertools.combinations(range(N), M)))].mean(1)
    a, b = uncentred_moment_top(P, k=2), uncentred_moment_top(G, k=2, batch_size=M, population=N)
    torch.testing.assert_close(b.values, a.values, atol=1e-12, rtol=1e-9)
    assert_same_vectors(b.vectors, a.vectors)


def test_bad_arguments(rows):
    with pytest.raises(ValueError, match=r"k must be in \[1, L-1=9\]"):
        covariance_spectrum(rows, k=10)
    with pytest.raises(ValueError, match="at least L=2"):
        covariance_spectrum(rows[:1], k=1)
    with pytest.raises(ValueError, match="population N=4 must exceed batch_size M=4"):
        covariance_spectrum(rows, k=1, batch_size=4, population=4)
    with pytest.raises(ValueError, match=r"\(L, D\)"):
        covariance_spectrum(rows[0], k=1)
    with pytest.raises(ValueError, match=r"k must be in \[1, L=10\]"):
        uncentred_moment_top(rows, k=11)


def test_centred_gram_keeps_float32_precision_under_a_large_mean():
    """The Gram matrix is centred by shifting the rows by the first one and removing the mean in
    float64 (one pass over G): rows with a mean 50x their spread lose no more precision than
    explicit centring in float32, and the float64 result equals the explicit centred Gram."""
    g = torch.Generator().manual_seed(0)
    L, D = 12, 5000
    G = 50 * torch.randn(D, generator=g, dtype=torch.float64) + torch.randn(L, D, generator=g, dtype=torch.float64)
    Dc = G - G.mean(0)  # explicit centring in float64: the reference (its L x L Gram: D x D would take minutes)
    torch.testing.assert_close(gram_module.centred_gram(G), Dc @ Dc.T, atol=1e-9, rtol=1e-12)
    ref = torch.linalg.eigvalsh(Dc @ Dc.T / L).flip(0)[: L - 1]
    s32 = covariance_spectrum(G.float(), k=3)
    old32 = torch.linalg.eigvalsh((lambda c: (c @ c.T).double())(G.float() - G.float().mean(0))).flip(0)[: L - 1] / L
    err_new = float(((s32.spectrum[: L - 1].double() - ref) / ref).abs().max())
    err_old = float(((old32 - ref) / ref).abs().max())
    assert err_new < 1e-5 and err_new < 3 * err_old + 1e-6  # lambda_* included


def test_gram_blocks_as_batches_of_column_slices_equal_the_explicit_gram(monkeypatch):
    """Blocks of 16 columns go through ``torch.bmm`` as 8 slices of 2, the last block of 5 columns
    (not a multiple of 8) and a non-contiguous block through one product: all equal the explicit
    float64 Gram matrices."""
    monkeypatch.setattr(gram_module, "_BLOCK", 16)
    g = torch.Generator().manual_seed(1)
    G = torch.randn(6, 16 * 3 + 5, generator=g, dtype=torch.float64)
    shift = torch.randn(G.shape[1], generator=g, dtype=torch.float64)
    Dc = G - G.mean(0)
    torch.testing.assert_close(gram_module.centred_gram(G), Dc @ Dc.T, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(gram_module.gram(G, shift), (G - shift) @ (G - shift).T, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(gram_module.gram(G), G @ G.T, atol=1e-12, rtol=1e-12)  # strided blocks


def test_column_blocks_give_the_matrix_result(rows, monkeypatch):
    """covariance_spectrum of the rows as column blocks of uneven widths (blocks of 5 columns inside
    each) equals that of the (L, D) matrix; vectors=False leaves the vectors out and nothing else."""
    monkeypatch.setattr(gram_module, "_BLOCK", 5)
    parts = list(torch.split(rows, [1, 20, 7, 19], dim=1))
    whole, split = covariance_spectrum(rows, k=4), covariance_spectrum(parts, k=4)
    torch.testing.assert_close(split.spectrum, whole.spectrum, atol=1e-14, rtol=1e-12)
    assert_same_vectors(split.vectors, whole.vectors, atol=1e-12)
    bare = covariance_spectrum(parts, k=4, vectors=False)
    assert bare.vectors is None
    torch.testing.assert_close(bare.spectrum, split.spectrum, atol=0, rtol=0)
    assert bare.trace == split.trace
    with pytest.raises(ValueError, match="share L"):
        covariance_spectrum([rows, rows[:4]], k=1)
    with pytest.raises(ValueError, match="empty"):
        covariance_spectrum([], k=1)


def test_coefficients_map_the_rows_to_the_eigenvectors(rows):
    """vectors = G^T coefficients (orthonormal); the projection ratio from the rows equals the one
    from the top-k eigenvectors of the explicit D x D covariance, for one gradient and for several."""
    _, _, vecs = explicit_cov(rows)
    s = covariance_spectrum(rows, k=4)
    V = rows.T @ s.coefficients
    torch.testing.assert_close(V, s.vectors, atol=1e-12, rtol=0)
    torch.testing.assert_close(V.T @ V, torch.eye(4, dtype=V.dtype), atol=1e-12, rtol=0)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(rows.shape[1], generator=g, dtype=rows.dtype)
    X = torch.randn(3, rows.shape[1], generator=g, dtype=rows.dtype)
    E = vecs[:, :4]  # explicit, orthonormal
    bare = covariance_spectrum(list(torch.split(rows, [30, 17], dim=1)), k=4, vectors=False)
    assert float(projection_ratio_from_rows(x, rows, bare)) == pytest.approx(float(x.norm() / (E.T @ x).norm()), rel=1e-10)
    torch.testing.assert_close(projection_ratio_from_rows(X, rows, bare), X.norm(dim=1) / (X @ E).norm(dim=1), rtol=1e-10, atol=0)
    torch.testing.assert_close(projection_ratio_from_rows(X, rows, bare), projection_ratio(X, s.vectors), rtol=1e-10, atol=0)
    with pytest.raises(ValueError, match=r"expected g of shape \(47,\)"):
        projection_ratio_from_rows(x[:10], rows, bare)
    with pytest.raises(ValueError, match="L=10"):
        projection_ratio_from_rows(x, rows[:6], bare)


def test_directions_of_zero_variance_have_zero_coefficients():
    """Rows spanning 2 directions: the 3rd eigenvalue is 0, its coefficients are 0, and the ratio
    comes from the 2 directions there are."""
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(20, 2, generator=g, dtype=torch.float64)).Q
    G = torch.randn(6, 2, generator=g, dtype=torch.float64) @ basis.T + torch.randn(20, generator=g, dtype=torch.float64)
    s = covariance_spectrum(G, k=3, vectors=False)
    assert abs(float(s.spectrum[2])) < 1e-12 * s.lambda_1
    assert torch.all(s.coefficients[:, 2] == 0) and torch.all(s.coefficients[:, :2].abs().sum(0) > 0)
    x = torch.randn(20, generator=g, dtype=torch.float64)
    assert float(projection_ratio_from_rows(x, G, s)) == pytest.approx(float(x.norm() / (basis.T @ x).norm()), rel=1e-10)
