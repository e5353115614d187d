"""The gradient_noise probe against App. C's K^M built by hand from the same L mini-batches.

The probe draws its mini-batches from the Scope's generator (``torch.Generator().manual_seed(seed)``)
through :func:`sgdscope.noise.minibatch_indices`; the reference redraws those indices and takes
each mini-batch gradient with plain autograd on a copy of the model, then forms the D x D matrix
``K^M = (1/L) sum_l (g_l - gbar)(g_l - gbar)^T`` in float64 and diagonalises it.
"""
import copy

import pytest
import torch
from torch import nn

import sgdscope
from sgdscope import probes as P
from sgdscope.noise import minibatch_indices
from _oracles import make_case

N, M, L, K, SEED, LR = 40, 8, 6, 3, 5, 0.1


def _flat_grad(model, x, y) -> torch.Tensor:
    loss = nn.functional.cross_entropy(model(x), y)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])


def _run_probe():
    """One SGD step on a tiny float64 MLP, then the probe (M from the Scope's batch size). The
    training set size given to the Scope (1000) is not the pool's: N must be the pool's, 40."""
    model, x, y = make_case("mlp", n=N)
    probe = P.gradient_noise(L, k=K, every=1)
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), [(x[:20], y[:20])], [probe], sink=sgdscope.MemorySink(),
                           noise_data=(x, y), train_size=1000, batch_size=M, seed=SEED)
    before = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xb, yb = x[20:28], y[20:28]
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()
    out = scope.after_step(0, optimizer=opt, batch=(xb, yb), loss=loss.detach())
    return out, model, before, x, y, (xb, yb)


def _explicit_KM(model, x, y):
    """(D, D) K^M from the L mini-batches the probe draws, and its eigh (descending)."""
    idx = minibatch_indices(N, batch_size=M, num_batches=L, generator=torch.Generator().manual_seed(SEED))
    ref = copy.deepcopy(model).eval()  # the Scope measures in bn_mode="eval" (no bn or dropout here anyway)
    G = torch.stack([_flat_grad(ref, x[rows], y[rows]) for rows in idx]).double()
    gbar = G.mean(0)
    KM = sum(torch.outer(g - gbar, g - gbar) for g in G) / L
    vals, vecs = torch.linalg.eigh(KM)
    return KM, vals.flip(0), vecs.flip(1)


def test_gradient_noise_reports_the_papers_KM_and_the_per_example_K():
    out, model, before, x, y, (xb, yb) = _run_probe()
    assert set(out) == {"gradient_noise"}  # the default instance name
    res = out["gradient_noise"]
    KM, ev, vecs = _explicit_KM(model, x, y)
    assert res["M"] == M and res["L"] == L and res["N"] == N
    assert all(isinstance(res[key], float) for key in ("M", "L", "N"))
    # primary values: K^M itself, no factor M
    assert res["lambda_1"] == pytest.approx(float(ev[0]), rel=1e-9)
    assert res["lambda_star"] == pytest.approx(float(ev[L - 2]), rel=1e-8)
    assert res["ratio"] == pytest.approx(float(ev[L - 2] / ev[0]), rel=1e-8)
    assert res["trace"] == pytest.approx(float(torch.trace(KM)), rel=1e-9)
    torch.testing.assert_close(res["spectrum"][: L - 1].double(), ev[: L - 1], rtol=1e-8, atol=1e-14)
    assert abs(float(res["spectrum"][L - 1])) < 1e-10 * float(ev[0])  # centring on gbar: rank L-1
    # per-example estimate: c K^M with c = M (N-1)/(N-M) = 9.75
    c = M * (N - 1) / (N - M)
    assert res["lambda_1_per_example"] == pytest.approx(c * float(ev[0]), rel=1e-9)
    assert res["trace_per_example"] == pytest.approx(c * float(torch.trace(KM)), rel=1e-9)
    # ||g|| / ||g_k||: the training gradient (before the step) against the top-k eigenvectors
    g = _flat_grad(before, xb, yb).double()
    assert res["g_ratio"] == pytest.approx(float(g.norm() / (vecs[:, :K].T @ g).norm()), rel=1e-8)


def test_gradient_noise_name_can_be_set():
    assert P.gradient_noise().name == "gradient_noise"
    assert P.gradient_noise(name="K").name == "K"
