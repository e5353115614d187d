"""The recorders: a real toy experiment (and a real FDR check and projected path) at tiny size, stored as a
run folder and read back equal to the result tensors, under names the vocabulary lists."""
import math

import numpy as np
import pytest
import torch

import sgdscope
from sgdscope.landscape import losses_at, projected_path, trace_along
from sgdscope.optim import FDRMonitor
from sgdscope.quantities import PROBE_TYPES, QUANTITIES, RECORD_TYPES, RECORDED, RECORDERS, quantity
from sgdscope.store import list_arrays, load_arrays, load_run, read_config, read_probes, read_status
from sgdscope.toys import (
    log_fdr,
    negative_eigenvalue_experiment,
    noise_structure_experiment,
    record_negative_sum,
    record_noise_structure,
    record_trace_rate,
    record_valley_path,
    record_valley_slope,
    trace_rate_experiment,
    valley_slope_experiment,
)
from _oracles import FnModel, MeanOut


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/toys/conftest.py


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def rows(run, name, kind):
    df = load_run(run)
    df = df[(df["type"] == kind) & (df["name"] == name)]
    return df["step"].to_numpy(), df["epoch"].to_numpy(), df["value"].to_numpy()


def value(run, name, kind):
    steps, _, values = rows(run, name, kind)
    assert len(values) == 1, (name, steps)
    return values[0]


def check_vocabulary(run, kind):
    """Every stored (type, name) is listed, with the right array flag; every plain listed name is stored."""
    assert read_probes(run) == {kind: kind} and kind in RECORD_TYPES
    stored = {(n, False) for n in load_run(run)["name"]} | {(n, True) for _, n in list_arrays(run)}
    for name, is_array in stored:
        assert quantity(kind, name).array == is_array, (kind, name)
    return {name for name, _ in stored}


def test_trace_rate_is_stored_at_step_0(tmp_path):
    res = trace_rate_experiment(etas=(0.004, 0.01), equilibrate=20, measure=20, chains=4, generator=gen())
    run = record_trace_rate(res, tmp_path / "tr", config={"chains": 4, "etas": [0.004, 0.01]})
    for name, want in (("eta", res.etas), ("trace_change", res.trace_change), ("stderr", res.stderr)):
        (step, got), = load_arrays(run, "trace_rate", name).items()
        assert step == 0 and got.dtype == np.float64
        np.testing.assert_array_equal(got, want.numpy())
    for name, want in (("slope", res.fit.slope), ("intercept", res.fit.intercept), ("r2", res.fit.r2),
                       ("predicted_slope", res.predicted_slope)):
        assert value(run, name, "trace_rate") == want
    assert read_config(run)["experiment"] == {"name": "trace_rate", "chains": 4, "etas": [0.004, 0.01]}
    assert read_status(run)["state"] == "done"
    assert check_vocabulary(run, "trace_rate") == {q.name for q in RECORDED if q.type == "trace_rate"}
    with pytest.raises(FileExistsError):
        record_trace_rate(res, run)
    record_trace_rate(res, run, overwrite=True)


def test_noise_structure_rows_per_step_and_kind(tmp_path):
    res = noise_structure_experiment(steps=40, record_every=10, chains=4, generator=gen(1))
    run = record_noise_structure(res, tmp_path / "ns")
    for kind in ("sgd", "isotropic_subspace"):
        for name, table in (("trace", res.trace), ("trace_stderr", res.trace_stderr), ("det", res.det),
                            ("det_stderr", res.det_stderr)):
            steps, epochs, values = rows(run, f"{kind}_{name}", "noise_structure")
            np.testing.assert_array_equal(steps, res.steps.numpy())
            np.testing.assert_array_equal(epochs, res.steps.numpy())  # full batch: an epoch a step
            np.testing.assert_array_equal(values, table[kind].numpy())
            assert quantity("noise_structure", f"{kind}_{name}").name == "{noise}_" + name
    check_vocabulary(run, "noise_structure")


def test_valley_slope_gd_first_chain_mean_and_stationary(tmp_path):
    res = valley_slope_experiment(alpha=1e-3, lr=0.05, steps=200, chains=3, record_every=20, generator=gen(2))
    run = record_valley_slope(res, tmp_path / "vs")
    steps = res.steps.numpy()
    theta2 = res.theta_noisy[..., 1]
    for name, want in (("gd_theta_1", res.theta_gd[:, 0]), ("gd_theta_2", res.theta_gd[:, 1]),
                       ("noisy_theta_1", res.theta_noisy[:, 0, 0]), ("noisy_theta_2", res.theta_noisy[:, 0, 1]),
                       ("noisy_theta_2_mean", theta2.mean(1)), ("noisy_theta_2_stderr", theta2.std(1) / 3**0.5)):
        got_steps, _, got = rows(run, name, "valley_slope")
        np.testing.assert_array_equal(got_steps, steps)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-15, atol=0)
    for name, want in (("stationary", res.stationary), ("stationary_stderr", res.stationary_stderr),
                       ("predicted", res.predicted)):
        got_steps, _, got = rows(run, name, "valley_slope")
        assert got_steps.tolist() == [steps[-1]] and got[0] == want
    assert check_vocabulary(run, "valley_slope") == {q.name for q in RECORDED if q.type == "valley_slope"}


def test_negative_sum_snapshots_at_step_0(tmp_path):
    with pytest.warns(RuntimeWarning, match="did not reach a minimum"):  # 50 steps of descent: recording only
        res = negative_eigenvalue_experiment(lrs=(0.05,), batch_sizes=(4, 8), num_examples=40, hidden=3, gd_steps=50,
                                             steps=20, snapshots=2, snapshot_every=10, generator=gen(3))
    run = record_negative_sum(res, tmp_path / "neg")
    for name in ("lr", "batch_size", "loss", "excess_loss", "negative_sum"):
        np.testing.assert_array_equal(load_arrays(run, "negative_sum", name)[0], getattr(res, name).numpy())
    for name, want in (("slope", res.fit.slope), ("intercept", res.fit.intercept), ("r2", res.fit.r2),
                       ("base_loss", res.base_loss), ("base_negative_sum", res.base_negative_sum), ("dim", res.dim)):
        assert value(run, name, "negative_sum") == want
    assert check_vocabulary(run, "negative_sum") == {q.name for q in RECORDED if q.type == "negative_sum"}


def test_fdr_results_logged_into_a_run_and_a_memory_sink(tmp_path):
    g = gen(4)
    lam = torch.tensor([4.0, 1.0, 0.01], dtype=torch.float64)
    theta = torch.ones(3, dtype=torch.float64)
    top1, plain = FDRMonitor(window=20, basis=torch.eye(3, 1, dtype=torch.float64)), FDRMonitor(window=20)
    results = []
    memory = sgdscope.MemorySink()
    with sgdscope.store.RunWriter(tmp_path / "fdr") as w:
        for step in range(60):
            grad = lam * theta + 0.1 * torch.randn(3, generator=g, dtype=torch.float64)
            top1.update(theta, grad, lr=0.1, momentum=0.5)
            plain.update(theta, grad, lr=0.1, momentum=0.5)
            theta = theta - 0.1 * grad
            if (step + 1) % 20 == 0:
                results.append(top1.result())
                log_fdr(w, step, (step + 1) / 20, results[-1])
                log_fdr(memory, step, (step + 1) / 20, plain.result(), name="fdr_raw")
        w.set_status("done")
    run = tmp_path / "fdr"
    for name in ("ratio", "ratio_subspace", "o_left", "o_right", "o_left_subspace", "o_right_subspace"):
        steps, epochs, got = rows(run, name, "fdr")
        assert steps.tolist() == [19, 39, 59] and epochs.tolist() == [1.0, 2.0, 3.0]
        assert got.tolist() == [getattr(r, name) for r in results]
    assert rows(run, "window", "fdr")[2].tolist() == [20.0] * 3
    assert check_vocabulary(run, "fdr") == {q.name for q in RECORDED if q.type == "fdr"}
    assert memory.probes == {"fdr_raw": "fdr"}
    assert {n for _, _, _, n, _ in memory.rows} == {"ratio", "o_left", "o_right", "window"}  # no basis: no subspace


def ring_problem():
    """(|w|^2 - 1)^2: a circular valley of minima of radius 1 (as in tests/landscape)."""
    return sgdscope.Problem(FnModel(lambda w: ((w**2).sum() - 1) ** 2, [0.0, 0.0]), MeanOut(),
                            [(torch.zeros(1, 1), torch.zeros(1))])


def on_circle(angle, radius=1.2):
    return radius * torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)


@pytest.fixture
def ring_path():
    p = ring_problem()
    path = projected_path(p, lambda s: on_circle(0.3 * s), [0, 4, 8], lr=0.05, threshold=1e-3, max_steps=1000)
    val = losses_at(ring_problem(), path.thetas * 1.01)  # a "validation loss": the loss a little off the valley
    trace = trace_along(p, path.thetas, num_matvecs=8, generator=gen(5))
    return path, val, trace


def test_valley_path_rows_per_projected_state(tmp_path, ring_path):
    path, val, trace = ring_path
    run = record_valley_path(path, tmp_path / "path", val_loss=val, trace=trace, steps_per_epoch=4)
    steps = path.steps.numpy()
    for name, want in (("train_loss", path.train_loss), ("val_loss", val), ("trace", trace.estimate),
                       ("trace_stderr", trace.stderr), ("gd_steps", path.gd_steps.double()),
                       ("converged", path.converged.double())):
        got_steps, epochs, got = rows(run, name, "valley_path")
        np.testing.assert_array_equal(got_steps, steps)
        np.testing.assert_array_equal(epochs, steps / 4)
        np.testing.assert_array_equal(got, want.numpy())
    got_steps, _, got = rows(run, "connected", "valley_path")  # with the previous state: none at the first
    np.testing.assert_array_equal(got_steps, steps[1:])
    np.testing.assert_array_equal(got, path.connected.double().numpy())
    assert check_vocabulary(run, "valley_path") == {q.name for q in RECORDED if q.type == "valley_path"}

    bare = record_valley_path(path, tmp_path / "bare")
    assert set(load_run(bare)["name"]) == {"train_loss", "gd_steps", "converged", "connected"}
    assert np.isnan(load_run(bare)["epoch"]).all()  # no steps_per_epoch: no epochs
    with pytest.raises(ValueError, match=r"val_loss must have one value per projected state, shape \(9,\), got \(3,\)"):
        record_valley_path(path, tmp_path / "bad", val_loss=val[:3])


def test_valley_path_appended_to_its_training_run(tmp_path, ring_path):
    path, val, _ = ring_path
    training = tmp_path / "training"
    with sgdscope.store.RunWriter(training, config={"optimizer": {"lr": 0.1}}) as w:
        for step in range(9):
            w.log(step, step / 4, "train", {"loss": 1.0 / (1 + step)})
        w.set_status("done", message="finished")
    before = read_status(training)
    record_valley_path(path, training, val_loss=val, steps_per_epoch=4, append=True)
    after = read_status(training)
    assert (after["state"], after["step"], after["message"]) == ("done", before["step"], "finished")
    assert read_config(training) == {"optimizer": {"lr": 0.1}}
    assert read_probes(training) == {"valley_path": "valley_path"}
    df = load_run(training)
    assert len(df[df["probe"] == "train"]) == 9 and len(df[df["name"] == "val_loss"]) == len(path.steps)
    with pytest.raises(ValueError, match="keeps the run's own config"):
        record_valley_path(path, training, append=True, config={"x": 1})
    running = tmp_path / "running"
    sgdscope.store.RunWriter(running).close()
    with pytest.raises(ValueError, match="still running"):
        record_valley_path(path, running, append=True)


def test_record_types_are_not_probe_types():
    assert set(RECORD_TYPES) == set(RECORDERS) and not set(RECORD_TYPES) & set(PROBE_TYPES)
    assert set(RECORD_TYPES) == {q.type for q in RECORDED} and not set(RECORD_TYPES) & {q.type for q in QUANTITIES}
    for kind, how in RECORDERS.items():
        name = how.split("(")[0].rsplit(".", 1)[-1]
        assert callable(getattr(sgdscope.toys, name)), (kind, how)
    with pytest.raises(KeyError, match="trace_rate.*no value 'eta2'.*eta, trace_change"):
        quantity("trace_rate", "eta2")
