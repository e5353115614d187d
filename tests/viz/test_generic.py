"""The generic figures and the registry: drawn from runs the test stores, missing metrics named."""
import numpy as np
import pytest

import sgdscope
from sgdscope.store import RunWriter
from sgdscope.viz import FIGURES, MissingData, Runs, available, draw


def _write(path, lr, seed, steps=6):
    with RunWriter(path, config={"optimizer": {"lr": lr}, "seed": seed, "name": path.name}) as w:
        w.declare({"train": "train", "hessian_top": "top_eigenvalues"})
        for step in range(steps):
            w.log(step, step / 3, "train", {"loss": lr * (steps - step) + seed})
            w.log(step, step / 3, "hessian_top", {"lambda_1": 10.0 * lr + step})
        w.set_status("done")
    return path


@pytest.fixture
def sweep(tmp_path):
    for lr in (0.1, 0.5):
        for seed in (0, 1):
            _write(tmp_path / "s" / f"lr={lr},seed={seed}", lr, seed)
    return tmp_path / "s"


def test_metric_curve_one_line_per_grid_point_with_a_band_over_seeds(sweep, tmp_path):
    fig = draw("generic.metric", sweep, metric="top_eigenvalues/lambda_1")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == [r"$\eta$=0.1 (mean of 2)", r"$\eta$=0.5 (mean of 2)"]
    np.testing.assert_allclose(lines[0].get_ydata(), 1.0 + np.arange(6))  # the seeds agree here: mean = each
    assert len(ax.collections) == 2 and ax.get_xlabel() == "iteration"
    fig.savefig(tmp_path / "metric.png")
    assert (tmp_path / "metric.png").stat().st_size > 1000


def test_missing_metrics_name_the_probe(sweep):
    with pytest.raises(MissingData, match=r"gradient_noise/lambda_1: add the gradient_noise probe \(\[probes.gradient_noise\]"):
        draw("generic.metric", sweep, metric="gradient_noise/lambda_1")
    ok, why = available(sweep)
    assert "generic.metric" in ok and "spectral_density" in why["generic.spectral_density"]
    with pytest.raises(KeyError, match="no figure 'nope'"):
        draw("nope", sweep)


def test_a_dataframe_source_has_no_arrays(sweep):
    runs = Runs.of(sgdscope.load_sweep(sweep))
    assert runs.has("top_eigenvalues/lambda_1") and not runs.has("spectral_density/grid")
    with pytest.raises(MissingData, match="arrays are read from run folders"):
        runs.arrays("spectral_density/grid", runs.names[0])


def test_every_registered_figure_names_its_paper_and_needs():
    for name, spec in FIGURES.items():
        assert name.count(".") == 1 and spec.paper and spec.title, name


def test_a_family_of_names_is_needed_by_any_member(tmp_path):
    with RunWriter(tmp_path / "r", config={"name": "r"}) as w:
        w.declare({"alignment": "alignment"})
        w.log(0, 0.0, "alignment", {"mean_M8": 1.0, "std_M8": 0.1})
    runs = Runs.open(tmp_path / "r")
    assert runs.has("alignment/mean_M{m}") and not runs.has("sharpest_directions/dloss_alpha_{a}")
    ok, why = available(runs)
    assert "walk.fig5" in ok and "sharpest_directions" in why["sharpest.fig2b"]
