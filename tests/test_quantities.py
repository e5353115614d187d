"""The vocabulary: every probe returns exactly the names listed for its type, and a Scope run and a
config run with the same probes store the same (probe, name) keys."""
import pytest
import torch
from torch import nn

import sgdscope
from sgdscope import probes as P
from sgdscope.quantities import COMMON, PROBE_TYPES, QUANTITIES, describe, quantity
from sgdscope.run import build_run, resolve, train
from sgdscope.run.setup import build_parts
from _oracles import make_case
from _tiny_run import tiny_config


def _every_probe(x, y):
    """One instance of every probe type, firing at every step (interpolation also at epoch ends)."""
    made = {
        "top_eigenvalues": P.top_eigenvalues(2, every=1),
        "hessian_norms": P.hessian_norms(4, every=1),
        "hessian_trace": P.hessian_trace(4, every=1),
        "spectral_density": P.spectral_density(1, 5, 20, every=1),
        "gradient_noise": P.gradient_noise(4, 8, k=2, every=1),
        "hessian_noise": P.hessian_noise(4, 8, every=1),
        "alignment": P.alignment((4, 8), 2, every=1),
        "stability": P.stability(8, every=1),
        "loss_change": P.loss_change(every=1),
        "distance_from_init": P.distance_from_init(every=1),
        "gradient_cosine": P.gradient_cosine(every=1),
        "bn_scale_norm": P.bn_scale_norm(every=1),
        "evaluation": P.evaluation({"train": (x, y)}, every=1),
        "interpolation": P.interpolation(4, every=1),
        "sharpest_directions": P.sharpest_directions(2, num_batches=2, batch_size=8, every=1),
        "predictions": P.predictions(x[:5], every=1),
    }
    assert set(made) == set(PROBE_TYPES) == set(P.BY_TYPE)  # a new probe type must be listed here and there
    return list(made.values())


def test_every_probe_returns_exactly_its_listed_names():
    model, x, y = make_case("mlp", bn=True, n=40)
    sink = sgdscope.MemorySink()
    scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), (x[:16], y[:16]), _every_probe(x, y), sink=sink,
                           noise_data=(x, y), batch_size=8, strict=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:8]), y[:8]).backward()
        opt.step()
        scope.after_step(step, optimizer=opt, batch=(x[:8], y[:8]), epoch_end=step == 1)
    stored = {(sink.probes[p], n) for _, _, p, n, _ in sink.rows} | {(sink.probes[p], n) for p, n in sink.arrays}
    for kind, name in stored:
        if name not in COMMON:
            q = quantity(kind, name)  # raises if the name is not in the vocabulary
            assert q.array == ((next(p for p in sink.probes if sink.probes[p] == kind), name) in sink.arrays), (kind, name)
    listed = {(q.type, q.name) for q in QUANTITIES if "{" not in q.name and q.type != "train"}
    assert listed <= stored, listed - stored  # and every listed name is produced
    templates = {(q.type, q.name) for q in QUANTITIES if "{" in q.name}
    for kind, template in templates:
        assert any(k == kind and quantity(k, n).name == template for k, n in stored if n not in COMMON), (kind, template)


def test_unknown_names_are_named_in_the_error():
    with pytest.raises(KeyError, match="gradient_noise.*no value 'lambda_max'.*lambda_1, lambda_star"):
        quantity("gradient_noise", "lambda_max")
    with pytest.raises(KeyError, match="unknown probe type 'noise'"):
        quantity("noise", "lambda_1")
    assert quantity("alignment", "mean_M128").name == "mean_M{m}"
    assert "App. C" in describe("gradient_noise", "lambda_1")


def test_a_scope_run_and_a_config_run_store_the_same_keys(tmp_path):
    tables = {
        "top_eigenvalues": {"every": 4, "k": 3},
        "gradient_noise": {"every": 6, "num_batches": 5, "batch_size": 8, "k": 2},
        "interpolation": {"every": 3, "num_points": 5},
        "loss_change": {"every": 2},
        "stability": {"every": 5},
        "hessian_top30": {"type": "top_eigenvalues", "k": 2, "every": 7},  # a label: kept as the instance name
    }
    cfg = resolve(tiny_config(tmp_path / "cfg", probes=tables))
    run = train(cfg, progress=False)
    from_config = sgdscope.load_run(run)

    parts = build_parts(cfg)
    x, y = parts.data.train.x, parts.data.train.y
    probes = [P.top_eigenvalues(3, every=4), P.gradient_noise(5, 8, k=2, every=6), P.interpolation(5, every=3),
              P.loss_change(every=2), P.stability(every=5), P.top_eigenvalues(2, every=7, name="hessian_top30"),
              P.evaluation(parts.evaluation, every="epoch_end")]
    opt = torch.optim.SGD(parts.model.parameters(), lr=0.1, momentum=0.5)
    with sgdscope.Scope(parts.model, parts.loss_fn, parts.curvature, probes, sink=tmp_path / "scope", eval_data=parts.eval_set,
                        noise_data=parts.noise_source, train_size=len(y), batch_size=16) as scope:
        for step in range(12):
            idx = torch.arange(16 * (step % 6), 16 * (step % 6) + 16)
            opt.zero_grad()
            loss = parts.loss_fn(parts.model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            scope.log(step, "train", {"loss": float(loss.detach()), "lr": 0.1})
            scope.after_step(step, optimizer=opt, batch=(x[idx], y[idx]), epoch_end=step % 6 == 5)
    from_scope = sgdscope.load_run(tmp_path / "scope")

    def keys(df):
        return set(zip(df.probe, df.type, df.name))

    assert keys(from_config) == keys(from_scope)
    assert ("hessian_top30", "top_eigenvalues", "lambda_2") in keys(from_scope)
    assert sgdscope.store.read_probes(run)["hessian_top30"] == "top_eigenvalues"


def test_build_run_is_a_reusable_piece(tmp_path):
    """build_run gives a run at step 0 that train_step advances (what a sweep worker calls)."""
    from sgdscope.run import train_step

    cfg = resolve(tiny_config(tmp_path, probes={"loss_change": {"every": 1}}))
    sink = sgdscope.MemorySink()
    run = build_run(cfg, sink)
    losses = [train_step(run).loss for _ in range(3)]
    assert run.step == 3 and all(l == l for l in losses)
    assert [v for _, _, p, n, v in sink.rows if p == "train" and n == "loss"] == losses
    assert len(sink.values("loss_change", "delta_loss")) == 3
