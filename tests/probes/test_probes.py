"""Each probe against a direct computation on a tiny float64 model, at one real SGD step."""
import math

import pytest
import torch
from torch import nn

import sgdscope
from sgdscope import probes as P
from sgdscope.noise import minibatch_gradients
from _oracles import make_case, reference_hessian

LR = 0.1


def _step(kind="mlp", bn=False, probes=(), warm=False, seed=3):
    """One SGD step on a tiny model, with a Scope (no store) running ``probes`` at step 0."""
    model, x, y = make_case(kind, bn=bn, n=40)
    curv = [(x[:20], y[:20])]
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), curv, probes, sink=sgdscope.MemorySink(), noise_data=(x, y), train_size=40, batch_size=8, seed=seed)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xb, yb = x[20:28], y[20:28]
    opt.zero_grad()
    loss = nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()
    H = reference_hessian(model, curv)
    if warm:  # warm start from the exact eigenvectors: Lanczos then draws nothing from the generator
        scope.tracker.eigvecs = torch.linalg.eigh(H)[1].flip(1)[:, :5].clone()
    out = scope.after_step(0, optimizer=opt, batch=(xb, yb), loss=loss.detach())
    return out, dict(model=model, x=x, y=y, curv=curv, H=H, before=before, scope=scope, batch=(xb, yb))


def _loss(model, x, y, params=None):
    model.eval()
    try:
        with torch.no_grad():
            out = model(x) if params is None else torch.func.functional_call(model, params, (x,))
            return float(nn.functional.cross_entropy(out, y))
    finally:
        model.train()


def _flat(named):
    return torch.cat([v.reshape(-1) for v in named.values()])


def test_top_eigenvalues_and_norms_and_trace():
    out, c = _step(probes=[P.top_eigenvalues(4, every=1), P.hessian_norms(200, every=1), P.hessian_trace(30, every=1), P.spectral_density(every=1)])
    ev = torch.linalg.eigvalsh(c["H"])
    top = out["top_eigenvalues"]
    for i in range(4):
        assert top[f"lambda_{i + 1}"] == pytest.approx(float(ev[-1 - i]), rel=2e-3, abs=1e-6)
    assert top["max_residual"] <= 1e-3 * abs(float(ev[-1])) * 1.0001
    norms = out["hessian_norms"]
    assert norms["spectral_norm"] == pytest.approx(float(ev.abs().max()), rel=2e-3)
    assert norms["lambda_min"] == pytest.approx(float(ev[0]), rel=2e-3, abs=1e-6)
    assert abs(norms["frobenius_norm"] - float(torch.linalg.norm(c["H"]))) < 4 * norms["frobenius_stderr"]
    tr = out["hessian_trace"]
    assert abs(tr["trace"] - float(ev.sum())) < 4 * tr["trace_stderr"] + 1e-12
    dens = out["spectral_density"]
    dx = float(dens["grid"][1] - dens["grid"][0])
    assert float(dens["density"].sum()) * dx == pytest.approx(1.0, abs=2e-2)


def test_alignment_with_the_full_gradient():
    out, c = _step(probes=[P.alignment(batch_sizes=(1000,), num_batches=3, every=1)])
    model = c["model"]
    g = torch.autograd.grad(nn.functional.cross_entropy(model(c["x"]), c["y"]), list(model.parameters()))
    g = torch.cat([t.reshape(-1) for t in g])
    assert out["alignment"]["mean_M40"] == pytest.approx(float(g @ c["H"] @ g / (g @ g)), rel=1e-8)
    assert out["alignment"]["std_M40"] == 0


def test_stability_from_dense_per_example_hessians():
    out, c = _step(probes=[P.stability(num_examples=10, every=1)])
    ev, vecs = torch.linalg.eigh(c["H"])
    e = vecs[:, -1]
    h = torch.stack([e @ reference_hessian(c["model"], [(c["x"][i : i + 1], c["y"][i : i + 1])]) @ e for i in range(10)])
    s2 = float(h.var(unbiased=False))
    res = out["stability"]
    assert res["lambda_1"] == pytest.approx(float(ev[-1]), rel=2e-3)
    assert res["s2"] == pytest.approx(s2, rel=2e-2)
    N, S = 40, 8
    assert res["value"] == pytest.approx((1 - LR * res["lambda_1"]) ** 2 + res["s2"] * LR**2 * (N - S) / (S * (N - 1)), rel=1e-12)


@pytest.mark.parametrize("after_hessian", [False, True], ids=["alone", "after-hessian"])
def test_dynamics_probes(after_hessian):
    # after a curvature probe, the loss after the step is the by-product of the Hessian's graph
    probes = [P.loss_change(every=1), P.distance_from_init(every=1), P.bn_scale_norm(every=1), P.gradient_cosine(every=1)]
    probes = [P.top_eigenvalues(1, every=1)] + probes if after_hessian else probes
    out, c = _step(bn=True, probes=probes)
    x, y = c["curv"][0]
    after = _loss(c["model"], x, y)
    before = _loss(c["model"], x, y, c["before"])
    assert out["loss_change"]["delta_loss"] == pytest.approx(before - after, rel=1e-10)
    now = _flat({k: v.detach() for k, v in c["model"].named_parameters()})
    assert out["distance_from_init"]["from_init"] == pytest.approx(float((now - _flat(c["before"])).norm()), rel=1e-12)
    assert out["bn_scale_norm"]["last"] == pytest.approx(float(c["model"][1].weight.detach().norm()))
    assert math.isnan(out["gradient_cosine"]["cosine"])  # no previous step yet


def test_gradient_cosine_of_consecutive_steps():
    model, x, y = make_case("mlp", n=40)
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x, y), [P.gradient_cosine(every=1)], sink=sgdscope.MemorySink())
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    grads = []
    for step, sl in enumerate([slice(0, 8), slice(8, 16)]):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[sl]), y[sl]).backward()
        grads.append(torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()]))
        opt.step()
        out = scope.after_step(step, optimizer=opt)
    assert out["gradient_cosine"]["cosine"] == pytest.approx(float(torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)), rel=1e-10)


def test_interpolation_matches_direct_evaluation():
    out, c = _step(probes=[P.interpolation(7, every=1)])
    res = out["interpolation"]
    before, after = _flat(c["before"]), _flat({k: v.detach() for k, v in c["model"].named_parameters()})
    spec = c["scope"].problem.spec
    x, y = c["curv"][0]
    direct = torch.tensor([_loss(c["model"], x, y, spec.unflatten((1 - a) * before + a * after)) for a in torch.linspace(0, 1, 7, dtype=torch.float64)], dtype=torch.float64)
    torch.testing.assert_close(res["curve"].double(), direct, rtol=1e-10, atol=1e-12)
    interior = direct[1:-1].max()
    assert res["crossed"] == float(bool(interior > max(direct[0], direct[-1])))
    assert res["valley_floor"] == pytest.approx(float(direct.min()))
    assert res["height"] >= 0


def test_sharpest_directions_against_dense_eigenvectors():
    probe = P.sharpest_directions(3, grid=[-2.0, -1.0, 0.0, 1.0, 2.0], num_batches=4, batch_size=8, every=1)
    out, c = _step(probes=[probe], warm=True)
    res = out["sharpest_directions"]
    ev, vecs = torch.linalg.eigh(c["H"])
    e1 = vecs[:, -1]
    g = torch.Generator().manual_seed(3)
    G = minibatch_gradients(c["scope"].problem, (c["x"], c["y"]), batch_size=8, num_batches=4, generator=g)
    step_e1 = LR * float((G @ e1).abs().mean())
    assert res["step_e1"] == pytest.approx(step_e1, rel=1e-6)
    theta = _flat({k: v.detach() for k, v in c["model"].named_parameters()})
    spec = c["scope"].problem.spec
    x, y = c["curv"][0]
    direct = torch.tensor([_loss(c["model"], x, y, spec.unflatten(theta + k * step_e1 * e1)) for k in [-2.0, -1.0, 0.0, 1.0, 2.0]], dtype=torch.float64)
    curve = res["loss_along"].double()
    assert torch.allclose(curve, direct, rtol=1e-6) or torch.allclose(curve, direct.flip(0), rtol=1e-6)  # sign of e1
    base = _loss(c["model"], x, y)
    for a in (0.5, 1.0, 2.0):
        steps = -LR * (G + (a - 1) * (G @ e1)[:, None] * e1[None])
        want = sum(_loss(c["model"], x, y, spec.unflatten(theta + s)) - base for s in steps) / 4
        assert res[f"dloss_alpha_{a:g}"] == pytest.approx(want, rel=1e-6, abs=1e-12)
    step = theta - _flat(c["before"])
    for i in range(3):
        assert res[f"cos_e{i + 1}"] == pytest.approx(float((vecs[:, -1 - i] @ step).abs() / step.norm()), rel=1e-4, abs=1e-8)


def test_predictions_and_evaluation():
    model, x, y = make_case("mlp", bn=True, dropout=True, n=40)
    probes = [P.predictions(x[:5], every=1), P.evaluation({"all": (x, y)}, every=1)]
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x, y), probes, sink=sgdscope.MemorySink())
    out = scope.after_step(0)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(out["predictions"]["probs"], torch.softmax(model(x[:5]), -1).float())
        logits = model(x)
    model.train()
    assert out["evaluation"]["all_accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert out["evaluation"]["all_loss"] == pytest.approx(float(nn.functional.cross_entropy(logits, y)))


def test_probe_arguments_are_checked():
    with pytest.raises(ValueError, match="k must be in"):
        P.top_eigenvalues(0)
    with pytest.raises(ValueError, match="num_points must be >= 3"):
        P.interpolation(2)
    with pytest.raises(ValueError, match="method must be one of"):
        P.hessian_trace(method="exact")
    with pytest.raises(ValueError, match="num_batches"):
        P.gradient_noise(1)
