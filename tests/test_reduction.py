"""Every quantity is of the mean loss over the examples (the papers' L), whatever the loss's reduction;
batch norm's measurement mode is chosen or warned about; the noise pool's defaults are named.

The reduction is read from a torch loss module's ``reduction`` (or a function's ``reduction``
default), declared with ``reduction=`` for a plain function, and never guessed.
"""
import copy
import functools
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sgdscope
from sgdscope import probes as P
from _oracles import Case, make_case, reference_hessian

LR, S = 0.2, 4


def _mean_fn(out, y):
    return F.cross_entropy(out, y)


def _sum_fn(out, y):
    return F.cross_entropy(out, y, reduction="none").sum()


# (the loss given to the Scope and used to train, its declared reduction, whether it sums)
LOSSES = {
    "module-mean": (nn.CrossEntropyLoss(), None, False),
    "module-sum": (nn.CrossEntropyLoss(reduction="sum"), None, True),
    "plain-mean": (_mean_fn, "mean", False),
    "plain-sum": (_sum_fn, "sum", True),
}


def _run(base, x, y, loss_key, steps=3):
    """Train a copy of ``base`` with the loss of ``loss_key`` (a summed loss with lr / S, so every run
    follows the same trajectory) under a Scope; return the sink and each step's parameters."""
    loss_fn, declared, summed = LOSSES[loss_key]
    model = copy.deepcopy(base)
    sink = sgdscope.MemorySink()
    probes = P.break_even(every=1, k=2, num_batches=4, batch_size=S) + [P.interpolation(5, every=1)]
    scope = sgdscope.Scope(model, loss_fn, (x[:12], y[:12]), probes, sink=sink, noise_data=(x, y), train_size=len(y),
                           batch_size=S, reduction=declared, lanczos_tol=1e-9, strict=True)
    opt = torch.optim.SGD(model.parameters(), lr=LR / S if summed else LR)
    thetas = [torch.cat([p.detach().reshape(-1) for p in model.parameters()])]
    for step in range(steps):
        xb, yb = x[S * step : S * step + S], y[S * step : S * step + S]
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        scope.after_step(step, optimizer=opt, batch=(xb, yb), loss=loss.detach())
        thetas.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    return sink, thetas


def _recorded(sink):
    rows = {(s, p, n): v for s, _, p, n, v in sink.rows if n != "seconds"}
    arrays = {(s, p, n): torch.as_tensor(a) for (p, n), by_step in sink.arrays.items() for s, a in by_step.items()}
    return rows, arrays


@pytest.fixture(scope="module")
def runs():
    base, x, y = make_case("mlp", n=24)
    return base, x, y, {key: _run(base, x, y, key) for key in LOSSES}


@pytest.mark.parametrize("key", ["module-sum", "plain-mean", "plain-sum"])
def test_sum_and_mean_losses_record_the_same_values(runs, key):
    *_, results = runs
    ref_rows, ref_arrays = _recorded(results["module-mean"][0])
    rows, arrays = _recorded(results[key][0])
    assert rows.keys() == ref_rows.keys() and arrays.keys() == ref_arrays.keys()
    for k, v in ref_rows.items():
        assert rows[k] == pytest.approx(v, rel=1e-7, abs=1e-9, nan_ok=True), k
    for k, a in ref_arrays.items():
        torch.testing.assert_close(arrays[k], a, rtol=1e-7, atol=1e-9, msg=str(k))


@pytest.mark.parametrize("key", list(LOSSES))
def test_recorded_values_are_those_of_the_mean_loss(runs, key):
    """lambda_H, Delta L, the interpolation's ends and Break-Even eq. 1 against dense float64
    references of the mean cross-entropy (lr: the step on the mean loss)."""
    base, x, y, results = runs
    sink, thetas = results[key]
    rows, arrays = _recorded(sink)
    model = copy.deepcopy(base)
    case = Case(model, nn.CrossEntropyLoss(), x[:12], y[:12])
    curv = [(x[:12], y[:12])]
    N = len(y)
    for step in range(len(thetas) - 1):
        before, after = thetas[step], thetas[step + 1]
        torch.nn.utils.vector_to_parameters(after, model.parameters())
        H = reference_hessian(model, curv)
        evals, evecs = torch.linalg.eigh(H)
        assert rows[(step, "top_eigenvalues", "lambda_1")] == pytest.approx(float(evals[-1]), rel=1e-8)
        assert rows[(step, "top_eigenvalues", "lambda_2")] == pytest.approx(float(evals[-2]), rel=1e-8)
        loss_before, loss_after = (float(case.loss_at(t, *curv[0])) for t in (before, after))
        assert rows[(step, "loss_change", "loss_before")] == pytest.approx(loss_before, rel=1e-10)
        assert rows[(step, "loss_change", "delta_loss")] == pytest.approx(loss_before - loss_after, rel=1e-8, abs=1e-12)
        curve = arrays[(step, "interpolation", "curve")]
        assert float(curve[0]) == pytest.approx(loss_before, rel=1e-10)
        assert float(curve[-1]) == pytest.approx(loss_after, rel=1e-10)
        # Break-Even eq. 1 along e_H^1 with per-example curvatures of the stability probe's 24 examples
        e = evecs[:, -1]
        h = torch.stack([e @ reference_hessian(model, [(x[i : i + 1], y[i : i + 1])]) @ e for i in range(N)])
        s2 = float(((h - h.mean()) ** 2).mean())
        lam = float(evals[-1])
        assert rows[(step, "stability", "s2")] == pytest.approx(s2, rel=1e-6)
        value = (1 - LR * lam) ** 2 + s2 * LR**2 * (N - S) / (S * (N - 1))
        assert rows[(step, "stability", "value")] == pytest.approx(value, rel=1e-7)
        assert rows[(step, "gradient_noise", "M")] == S and rows[(step, "gradient_noise", "N")] == N


def test_problem_loss_and_gradient_are_the_mean_for_every_reduction():
    model, x, y = make_case("mlp", n=10)
    batches = [(x[:3], y[:3]), (x[3:], y[3:])]
    ref = sgdscope.Problem(model, nn.CrossEntropyLoss(), batches)
    loss, grad = ref.loss_and_grad()
    H = reference_hessian(model, batches)
    for loss_fn, declared in [(nn.CrossEntropyLoss(reduction="sum"), None), (_sum_fn, "sum"), (_mean_fn, "mean"),
                              (F.cross_entropy, None), (functools.partial(F.cross_entropy, reduction="sum"), None)]:
        p = sgdscope.Problem(model, loss_fn, batches, reduction=declared)
        l2, g2 = p.loss_and_grad()
        torch.testing.assert_close(l2, loss)
        torch.testing.assert_close(g2, grad)
        torch.testing.assert_close(sgdscope.dense_hessian(p).matrix, H, rtol=1e-10, atol=1e-12)
        assert p.subproblem([(x[:4], y[:4])]).reduction == p.reduction


def test_the_reduction_is_read_or_declared_never_guessed():
    model, x, y = make_case("mlp", n=6)
    assert sgdscope.Problem(model, nn.CrossEntropyLoss(reduction="sum"), (x, y)).reduction == "sum"
    assert sgdscope.Problem(model, F.cross_entropy, (x, y)).reduction == "mean"  # its reduction argument's default
    assert sgdscope.Problem(model, functools.partial(F.cross_entropy, reduction="sum"), (x, y)).reduction == "sum"
    assert sgdscope.Problem(model, _sum_fn, (x, y), reduction="sum").reduction == "sum"
    with pytest.raises(ValueError, match=r"reduction='mean' or reduction='sum'"):
        sgdscope.Problem(model, _sum_fn, (x, y))
    with pytest.raises(ValueError, match=r"reduction='mean' or reduction='sum'"):
        sgdscope.Scope(model, lambda out, t: F.cross_entropy(out, t), (x, y), sink=sgdscope.MemorySink())
    with pytest.raises(ValueError, match=r"reduction='sum' contradicts loss_fn.reduction = 'mean'"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), reduction="sum")
    with pytest.raises(ValueError, match=r"loss_fn.reduction = 'none'.*reduction='mean' or 'sum'"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(reduction="none"), (x, y))
    with pytest.raises(ValueError, match="'mean' or 'sum', got reduction = 'avg'"):
        sgdscope.Problem(model, _sum_fn, (x, y), reduction="avg")
    per_example = sgdscope.Problem(model, lambda out, t: F.cross_entropy(out, t, reduction="none"), (x, y), reduction="mean")
    with pytest.raises(ValueError, match=r"not a scalar"):
        per_example.loss()
    # zoo losses carry their reduction
    assert sgdscope.Problem(model, sgdscope.zoo.build_loss("mse", reduction="sum"), (x, y)).reduction == "sum"


def test_evaluation_probe_records_the_mean_loss():
    model, x, y = make_case("mlp", n=12)
    out = {}
    for loss_fn in (nn.CrossEntropyLoss(), nn.CrossEntropyLoss(reduction="sum")):
        scope = sgdscope.Scope(model, loss_fn, (x, y), [P.evaluation({"all": (x, y)}, every=1)], sink=sgdscope.MemorySink(), strict=True)
        out[loss_fn.reduction] = scope.after_step(0, batch=(x[:4], y[:4]))["evaluation"]["all_loss"]
    assert out["sum"] == pytest.approx(out["mean"], rel=1e-12)


# ----------------------------------------------------------------------------- batch norm
_BN_WARNING = "bn_mode was not chosen"


def _bn_warnings(record):
    return [w for w in record if _BN_WARNING in str(w.message)]


def test_an_unchosen_bn_mode_warns_once_and_measures_in_eval_mode():
    model, x, y = make_case("mlp", bn=True, n=24)
    with pytest.warns(UserWarning, match=r"bn_mode was not chosen.*'eval'.*running statistics.*'train'.*own statistics"):
        p = sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y))
    assert p.bn_mode == "eval"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sub = p.subproblem([(x[:5], y[:5])])
        scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:12], y[:12]), [P.loss_change()], eval_data=(x[12:], y[12:]),
                               sink=sgdscope.MemorySink())
        for mode in ("eval", "train"):  # chosen: no warning
            sgdscope.Scope(model, nn.CrossEntropyLoss(), (x, y), sink=sgdscope.MemorySink(), bn_mode=mode)
        sgdscope.Problem(make_case("mlp", n=8)[0], nn.CrossEntropyLoss(), (x[:8], y[:8]))  # no batch norm: no warning
    assert sub.bn_mode == "eval" and scope.problem.bn_mode == scope.eval_problem.bn_mode == "eval"
    assert len(_bn_warnings(record)) == 1  # the unchosen Scope, once (not again for its evaluation set)
    assert _bn_warnings(record)[0].filename == __file__  # pointing at the caller's line
    with pytest.raises(ValueError, match="bn_mode must be one of"):
        sgdscope.Problem(model, nn.CrossEntropyLoss(), (x, y), bn_mode="batch")


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_delta_loss_and_interpolation_follow_the_chosen_bn_mode(bn_mode):
    model, x, y = make_case("mlp", bn=True, n=24)
    curv, ev = (x[:12], y[:12]), (x[12:], y[12:])
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), curv, [P.loss_change(every=1), P.interpolation(3, every=1)],
                           eval_data=ev, sink=sgdscope.MemorySink(), bn_mode=bn_mode, strict=True)
    before = scope.problem.theta()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    opt.zero_grad()
    F.cross_entropy(model(x[:8]), y[:8]).backward()
    opt.step()
    out = scope.after_step(0, optimizer=opt, batch=(x[:8], y[:8]))
    after = scope.problem.theta()
    for data, before_key, after_key, probe in [(curv, "loss_before", "loss_after", "loss_change")]:
        ref = sgdscope.Problem(model, nn.CrossEntropyLoss(), data, bn_mode=bn_mode)
        other = sgdscope.Problem(model, nn.CrossEntropyLoss(), data, bn_mode={"eval": "train", "train": "eval"}[bn_mode])
        assert out[probe][before_key] == pytest.approx(float(ref.loss(before)), rel=1e-12)
        assert out[probe][after_key] == pytest.approx(float(ref.loss(after)), rel=1e-12)
        assert abs(out[probe][after_key] - float(other.loss(after))) > 1e-3  # the modes differ here
    ref = sgdscope.Problem(model, nn.CrossEntropyLoss(), ev, bn_mode=bn_mode)
    curve = out["interpolation"]["curve"]
    assert float(curve[0]) == pytest.approx(float(ref.loss(before)), rel=1e-12)
    assert float(curve[-1]) == pytest.approx(float(ref.loss(after)), rel=1e-12)


# ----------------------------------------------------------------------------- the noise pool
def test_the_readme_snippet_names_the_arguments_to_pass():
    """Scope(model, loss_fn, curvature_data=(x_sub, y_sub), probes=break_even(...)) with a curvature subset
    no larger than the mini-batch: a warning at construction names noise_data= and train_size=; the
    K probe's failure names noise_data= and batch_size= with M and N."""
    model, x, y = make_case("mlp", n=40)
    x_sub, y_sub = x[:8], y[:8]
    with pytest.warns(UserWarning, match=r"noise_data=\(X, Y\).*curvature subset, 8 examples.*train_size=N.*N = 8"):
        scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), curvature_data=(x_sub, y_sub),
                               probes=P.break_even(every=1, num_batches=4), sink=sgdscope.MemorySink())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    F.cross_entropy(model(x[:8]), y[:8]).backward()
    opt.step()
    with pytest.warns(RuntimeWarning, match=r"gradient_noise.*M=8 >= N=8.*noise_data=\(X, Y\).*batch_size="):
        out = scope.after_step(0, optimizer=opt, batch=(x[:8], y[:8]))
    assert out["gradient_noise"]["failed"] == 1.0 and out["top_eigenvalues"]["lambda_1"] > 0
    assert "noise_data=" in scope.failures["gradient_noise"]


def test_minibatch_probes_name_the_pool_and_the_batch_size():
    model, x, y = make_case("mlp", n=40)
    pool = (x[:10], y[:10])
    probe = P.sharpest_directions(2, num_batches=2, batch_size=16, every=1)
    with pytest.warns(UserWarning, match="train_size") as record:
        scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), pool, [probe, P.stability(every=1)], noise_data=pool,
                               sink=sgdscope.MemorySink(), strict=True)
    assert not any("noise_data=(X, Y), the pool" in str(w.message) for w in record)  # it was given
    with pytest.raises(ValueError, match=r"M=16.*N=10.*noise_data=\(X, Y\).*batch_size="):
        scope.after_step(0, batch=(x[:8], y[:8]))
    with pytest.raises(ValueError, match=r"gradient_noise.*M=10 >= N=10.*noise_data=.*batch_size="):
        sgdscope.Scope(model, nn.CrossEntropyLoss(), pool, [P.gradient_noise(3, 10, k=1, every=1)], noise_data=pool,
                       sink=sgdscope.MemorySink(), strict=True).after_step(0, batch=(x[:8], y[:8]))
    with pytest.raises(ValueError, match=r"S=16 exceeds the training-set size N=10.*train_size="):
        sgdscope.Scope(model, nn.CrossEntropyLoss(), pool, [P.stability(every=1)], noise_data=pool, batch_size=16,
                       sink=sgdscope.MemorySink(), strict=True).after_step(0, batch=(x[:8], y[:8]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both given: no warning
        sgdscope.Scope(model, nn.CrossEntropyLoss(), pool, [probe, P.stability(every=1)], noise_data=(x, y), train_size=40,
                       sink=sgdscope.MemorySink())
