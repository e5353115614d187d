"""The noise paper's figures, drawn from runs the tests store with RunWriter in the format of
sgdscope.toys.record (and the hessian_noise probe's): axes, lines, labels and scales as in the paper,
the stored values, and MissingData naming what records a missing quantity."""
import math
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection

from sgdscope.store import RunWriter
from sgdscope.viz import FIGURES, MissingData, Runs, available, draw, noise_paper
from sgdscope.viz.noise_paper import (fdr_stationarity, hessian_noise_alignment, negative_eigenvalues, noise_structure,
                                      projected_path_loss, projected_path_trace, sloped_valley, trace_rate)

NAMES = tuple(f"noise.fig{n}" for n in ("1", "2a", "2b", "2cd", "3", "5", "6", "7"))


def write(path, kind, rows, *, extra=None):
    """A run of probe type ``kind``: ``rows`` [(step, epoch, values)]; ``extra`` {label: (type, rows)}."""
    with RunWriter(path, config={"experiment": {"name": kind}}) as w:
        w.declare({kind: kind} | {label: t for label, (t, _) in (extra or {}).items()})
        for label, (t, more) in {kind: (kind, rows), **(extra or {})}.items():
            for step, epoch, values in more:
                w.log(step, epoch, label, values)
        w.set_status("done")
    return path


def save(fig, tmp_path, name):
    fig.savefig(tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 5000


def curve(ax, label):
    return next(l for l in ax.get_lines() if l.get_label() == label)


# --- stored runs -------------------------------------------------------------------------------------

STEPS = np.arange(0, 200, 10)
EPOCHS = STEPS / 20


def valley_path_run(path, *, val=True, trace=True, epochs=True, training=False):
    rows = []
    for i, step in enumerate(STEPS):
        values = {"train_loss": 0.004 + 0.001 * math.sin(i), "gd_steps": 10.0 + i, "converged": 1.0}
        if val:
            values["val_loss"] = 0.9 - 0.01 * i + 0.002 * i**2 / 10
        if trace:
            values |= {"trace": 50.0 - i + 0.5 * math.cos(i), "trace_stderr": 1.0 + 0.1 * i}
        rows.append((int(step), EPOCHS[i] if epochs else math.nan, values))
    extra = {}
    if training:
        val = [(s, s / 20, {"val_loss": 1.0 + 1 / (1 + s)}) for s in range(19, 200, 20)]
        extra = {"train": ("train", [(s, s / 20, {"loss": 2.0 / (1 + s)}) for s in range(200)]),
                 "evaluation": ("evaluation", val)}
    return write(path, "valley_path", rows, extra=extra)


ETAS = np.array([0.002, 0.004, 0.006, 0.008])


def trace_rate_run(path):
    change = -1.3e4 * ETAS**2 + 0.001
    return write(path, "trace_rate", [(0, 0.0, {"eta": ETAS, "trace_change": change, "stderr": np.full(4, 0.02),
                                                "slope": -1.3e4, "intercept": 0.001, "r2": 0.99,
                                                "predicted_slope": -1.25e4})])


def noise_structure_run(path, kinds=("sgd", "isotropic_subspace")):
    rows = []
    for i, step in enumerate(range(0, 500, 50)):
        values = {}
        for j, kind in enumerate(kinds):
            values |= {f"{kind}_trace": 7 - (-1) ** j * 0.1 * i, f"{kind}_trace_stderr": 0.05,
                       f"{kind}_det": 5 + (-1) ** j * 0.2 * i, f"{kind}_det_stderr": 0.1}
        rows.append((step, float(step), values))
    return write(path, "noise_structure", rows)


LRS, SIZES = np.array([0.02, 0.02, 0.1, 0.1, 0.1]), np.array([2, 8, 2, 8, 8])


def negative_sum_run(path):
    excess = np.array([0.01, 0.02, 0.05, 0.03, 0.08])
    return write(path, "negative_sum", [(0, 0.0, {
        "lr": LRS, "batch_size": SIZES, "loss": excess + 0.3, "excess_loss": excess, "negative_sum": -4 * excess - 0.01,
        "slope": -4.0, "intercept": -0.01, "r2": 1.0, "base_loss": 0.3, "base_negative_sum": -0.02, "dim": 66.0})])


def fdr_run(path):
    rows = [(100 * e, float(e), {"ratio": 10.0 / e, "ratio_subspace": 1.0 / e**2, "o_left": 1.0, "o_right": 1.0,
                                 "window": 100.0}) for e in range(1, 11)]
    return write(path, "fdr", rows)


def cosine_run(path, *, evaluation=True):
    rows = [(8 * e, float(e), {"cosine": 0.5 + 0.04 * e, "stderr": 0.02}) for e in range(1, 11)]
    extra = {"train": ("train", [(s, (s + 1) / 8, {"loss": 1.0 / (1 + s)}) for s in range(80)])}
    if evaluation:
        extra["evaluation"] = ("evaluation", [(8 * e, float(e), {"train_loss": 0.5 / e}) for e in range(1, 11)])
    return write(path, "hessian_noise", rows, extra=extra)


VS_STEPS = np.arange(0, 1000, 20)


def valley_slope_run(path):
    rows = []
    for i, step in enumerate(VS_STEPS):
        values = {"gd_theta_1": 0.1 * 0.9**i, "gd_theta_2": 0.1 - 1e-4 * step, "noisy_theta_1": 0.1 * math.sin(i),
                  "noisy_theta_2": -0.02 + 0.1 * math.exp(-i / 10) + 0.003 * math.cos(i),
                  "noisy_theta_2_mean": -0.02 + 0.1 * math.exp(-i / 10), "noisy_theta_2_stderr": 0.002}
        if i == len(VS_STEPS) - 1:
            values |= {"stationary": -0.0199, "stationary_stderr": 0.001, "predicted": -0.02}
        rows.append((int(step), float(step), values))
    return write(path, "valley_slope", rows)


@pytest.fixture
def paper(tmp_path):
    """A folder holding one run of each figure's data."""
    root = tmp_path / "noise"
    valley_path_run(root / "path", training=True)
    trace_rate_run(root / "trace_rate")
    noise_structure_run(root / "noise_structure")
    negative_sum_run(root / "negative_sum")
    fdr_run(root / "fdr")
    cosine_run(root / "mlp")
    valley_slope_run(root / "valley_slope")
    return root


# --- the registry ------------------------------------------------------------------------------------

def test_every_figure_is_registered_and_drawn_from_a_folder_of_runs(paper, tmp_path):
    for name in NAMES:
        spec = FIGURES[name]
        assert spec.paper.startswith("Noise Fig. ") and spec.needs and spec.min_runs == 1
    ok, why = available(paper)
    assert set(NAMES) <= set(ok), {n: why.get(n) for n in NAMES}
    for name in NAMES:
        fig = draw(name, paper)
        assert fig.axes and all(ax.has_data() for ax in fig.axes), name  # no empty panel
        save(fig, tmp_path, name.replace(".", "_"))
    source = Path(noise_paper.__file__).read_text()
    assert "import torch" not in source and "from torch" not in source and "..toys" not in source  # stored runs only


def test_missing_quantities_name_the_recorder(tmp_path):
    run = trace_rate_run(tmp_path / "only_trace_rate")
    runs = Runs.open(run)
    cases = [(sloped_valley, "valley_slope/gd_theta_1", "sgdscope.toys.record_valley_slope"),
             (noise_structure, "noise_structure/sgd_trace", "sgdscope.toys.record_noise_structure"),
             (negative_eigenvalues, "negative_sum/excess_loss", "sgdscope.toys.record_negative_sum"),
             (projected_path_loss, "valley_path/train_loss", "sgdscope.toys.record_valley_path"),
             (projected_path_trace, "valley_path/trace", "sgdscope.toys.record_valley_path"),
             (fdr_stationarity, "fdr/ratio_subspace", "sgdscope.toys.log_fdr"),
             (hessian_noise_alignment, "hessian_noise/cosine", "add the hessian_noise probe")]
    for fn, metric, how in cases:
        with pytest.raises(MissingData, match=rf"{metric}.*{how}"):
            fn(runs)
    ok, why = available(run)
    assert "noise.fig2b" in ok and "valley_slope/gd_theta_1" in why["noise.fig7"]
    with pytest.raises(MissingData, match="valley_slope/gd_theta_1"):
        draw("noise.fig7", run)


def test_missing_parts_of_a_recorded_run_are_named(tmp_path):
    with pytest.raises(MissingData, match=r"valley_path/val_loss: written by sgdscope.toys.record_valley_path"):
        projected_path_loss(Runs.open(valley_path_run(tmp_path / "a", val=False)))
    with pytest.raises(MissingData, match=r"valley_path/trace, valley_path/trace_stderr"):
        projected_path_trace(Runs.open(valley_path_run(tmp_path / "b", trace=False)))
    with pytest.raises(MissingData, match=r"noise_structure/isotropic_subspace_trace"):
        noise_structure(Runs.open(noise_structure_run(tmp_path / "c", kinds=("sgd",))))
    lone = write(tmp_path / "d", "hessian_noise", [(1, 1.0, {"cosine": 0.9})])
    with pytest.raises(MissingData, match=r"train/loss.*recorded by `sgdscope run`"):
        hessian_noise_alignment(Runs.open(lone))


# --- each figure -------------------------------------------------------------------------------------

def test_fig1_projected_losses_against_epoch_with_the_training_path_inset(tmp_path):
    runs = Runs.open(valley_path_run(tmp_path / "p", training=True))
    fig = projected_path_loss(runs)
    (ax,) = fig.axes
    (inset,) = ax.child_axes
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss (projected path)" and ax.get_yscale() == "linear"
    stored = runs.frame[runs.frame["type"] == "valley_path"]
    for label, name in (("training loss", "train_loss"), ("validation loss", "val_loss")):
        line = curve(ax, label)
        np.testing.assert_allclose(line.get_xdata(), EPOCHS)
        np.testing.assert_allclose(line.get_ydata(), stored[stored["name"] == name]["value"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["training loss", "validation loss"]
    assert inset.get_title() == "training path" and len(inset.get_lines()) == 2
    np.testing.assert_allclose(inset.get_lines()[0].get_ydata(), [2.0 / (1 + s) for s in range(200)])  # train/loss
    np.testing.assert_allclose(inset.get_lines()[0].get_xdata(), np.arange(200) / 20)
    save(fig, tmp_path, "fig1")

    bare = projected_path_loss(Runs.open(valley_path_run(tmp_path / "q", epochs=False)), log_y=True)
    assert not bare.axes[0].child_axes  # no training curve in the run: no inset
    assert bare.axes[0].get_xlabel() == "step" and bare.axes[0].get_yscale() == "log"  # no epochs: steps
    np.testing.assert_allclose(curve(bare.axes[0], "training loss").get_xdata(), STEPS)


def test_fig3_trace_with_red_error_bars_and_a_panel_per_run(tmp_path):
    root = tmp_path / "two"
    valley_path_run(root / "resnet")
    valley_path_run(root / "vgg")
    runs = Runs.open(root)
    fig = projected_path_trace(runs)
    assert len(fig.axes) == 2 and [ax.get_title() for ax in fig.axes] == ["resnet", "vgg"]
    ax = fig.axes[0]
    assert ax.get_ylabel() == r"$\mathrm{Tr}(\mathbf{H})$" and ax.get_xlabel() == "epoch"
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), EPOCHS)
    np.testing.assert_allclose(line.get_ydata(), [50.0 - i + 0.5 * math.cos(i) for i in range(len(STEPS))])
    (bars,) = ax.collections  # the error bars: one segment per point, +- the stored stderr, in red
    segs = bars.get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segs], [2 * (1.0 + 0.1 * i) for i in range(len(STEPS))])
    np.testing.assert_allclose(bars.get_colors()[0][:3], (0.839, 0.153, 0.157), atol=1e-3)  # tab:red
    save(fig, tmp_path, "fig3")


def test_fig2a_points_by_learning_rate_and_batch_size_with_the_red_fit(tmp_path):
    runs = Runs.open(negative_sum_run(tmp_path / "neg"))
    fig = negative_eigenvalues(runs)
    (ax,) = fig.axes
    assert ax.get_xlabel() == r"training loss $L - L^*$" and ax.get_ylabel() == "sum of negative eigenvalues"
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(points) == 4  # (lr, batch size) groups
    xy = np.concatenate([c.get_offsets() for c in points])
    excess = np.array([0.01, 0.02, 0.05, 0.03, 0.08])
    np.testing.assert_allclose(sorted(map(tuple, xy)), sorted(zip(excess, -4 * excess - 0.01)))
    fit = next(l for l in ax.get_lines() if len(l.get_xdata()) == 50)
    np.testing.assert_allclose(fit.get_ydata(), -4 * fit.get_xdata() - 0.01)
    assert fit.get_color() == "tab:red"
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["fit: w = -4, b = -0.01", r"$\eta$=0.02", r"$\eta$=0.1", "S=2", "S=8"]
    save(fig, tmp_path, "fig2a")


def test_fig2b_trace_change_against_eta_squared_with_fit_and_eq15(tmp_path):
    runs = Runs.open(trace_rate_run(tmp_path / "tr"))
    fig = trace_rate(runs)
    (ax,) = fig.axes
    assert ax.get_xlabel() == r"$\eta^2$" and "Tr" in ax.get_ylabel()
    (bars,) = ax.containers
    assert bars.get_label() == "noisy GD, SGD noise"
    points = bars.lines[0]
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in bars.lines[2][0].get_segments()], 0.04)  # +- stderr
    np.testing.assert_allclose(points.get_xdata(), ETAS**2)
    np.testing.assert_allclose(points.get_ydata(), -1.3e4 * ETAS**2 + 0.001)
    fit = curve(ax, "fit: slope -1.3e+04")
    np.testing.assert_allclose(fit.get_ydata(), -1.3e4 * fit.get_xdata() + 0.001)
    assert fit.get_color() == "tab:red" and fit.get_xdata()[0] == 0
    eq15 = curve(ax, "eq. 15: slope -1.25e+04")
    np.testing.assert_allclose(eq15.get_ydata(), -1.25e4 * eq15.get_xdata())
    assert len(trace_rate(runs, predicted=False).axes[0].get_lines()) == len(ax.get_lines()) - 1
    save(fig, tmp_path, "fig2b")


def test_fig2cd_sgd_red_isotropic_blue_with_stderr_bands(tmp_path):
    runs = Runs.open(noise_structure_run(tmp_path / "ns", kinds=("isotropic_subspace", "sgd", "designed")))
    fig = noise_structure(runs)
    trace_ax, det_ax = fig.axes
    assert (trace_ax.get_title(), det_ax.get_title()) == ("(c)", "(d)")
    assert trace_ax.get_xlabel() == det_ax.get_xlabel() == "iteration"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["SGD noise", "isotropic noise (non-degenerate subspace)", "designed noise"]  # the paper's first
    steps = np.arange(0, 500, 50)
    for ax, q in ((trace_ax, "trace"), (det_ax, "det")):
        lines = {l.get_label(): l for l in ax.get_lines()}
        assert lines["SGD noise"].get_color() == "tab:red"
        assert lines["isotropic noise (non-degenerate subspace)"].get_color() == "tab:blue"
        for j, kind in enumerate(("isotropic_subspace", "sgd", "designed")):
            line = lines[{"sgd": "SGD noise", "isotropic_subspace": "isotropic noise (non-degenerate subspace)",
                          "designed": "designed noise"}[kind]]
            np.testing.assert_allclose(line.get_xdata(), steps)
            sign = (-1) ** j
            want = [7 - sign * 0.1 * i if q == "trace" else 5 + sign * 0.2 * i for i in range(10)]
            np.testing.assert_allclose(line.get_ydata(), want)
        assert len(ax.collections) == 3  # a band per kind
    save(fig, tmp_path, "fig2cd")


def test_fig5_cosine_above_the_training_curve(tmp_path):
    runs = Runs.open(cosine_run(tmp_path / "mlp"))
    fig = hessian_noise_alignment(runs)
    top, bottom = fig.axes
    assert top.get_ylabel() == r"$\mathrm{CS}(\mathbf{H}, \mathbf{C})$" and top.get_ylim()[1] == pytest.approx(1.02)
    np.testing.assert_allclose(top.get_lines()[0].get_xdata(), np.arange(1, 11))
    np.testing.assert_allclose(top.get_lines()[0].get_ydata(), 0.5 + 0.04 * np.arange(1, 11))
    assert len(top.collections) == 1  # the stderr band
    assert bottom.get_ylabel() == "training loss" and bottom.get_xlabel() == "epoch"
    np.testing.assert_allclose(bottom.get_lines()[0].get_ydata(), 0.5 / np.arange(1, 11))  # evaluation/train_loss first
    save(fig, tmp_path, "fig5")
    minibatch = hessian_noise_alignment(Runs.open(cosine_run(tmp_path / "mb", evaluation=False)))
    assert minibatch.axes[1].get_ylabel() == "training loss (mini-batch)"
    np.testing.assert_allclose(minibatch.axes[1].get_lines()[0].get_ydata(), 1.0 / (1 + np.arange(80)))
    chosen = hessian_noise_alignment(runs, loss="train/loss")
    assert len(chosen.axes[1].get_lines()[0].get_ydata()) == 80


def test_fig6_log_scale_raw_and_top1_with_the_threshold(tmp_path):
    runs = Runs.open(fdr_run(tmp_path / "fdr"))
    fig = fdr_stationarity(runs)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log" and ax.get_ylabel() == r"$|O_L/O_R - 1|$" and ax.get_xlabel() == "epoch"
    e = np.arange(1, 11)
    np.testing.assert_allclose(curve(ax, "raw parameter").get_ydata(), 10.0 / e)
    np.testing.assert_allclose(curve(ax, "projection to top-1 eigenvector").get_ydata(), 1.0 / e**2)
    np.testing.assert_allclose(curve(ax, "threshold 0.01").get_ydata(), [0.01, 0.01])
    assert len(fdr_stationarity(runs, threshold=None, x="step").axes[0].get_lines()) == 2
    save(fig, tmp_path, "fig6")


def test_fig7_gd_left_noisy_right_with_the_stationary_value(tmp_path):
    runs = Runs.open(valley_slope_run(tmp_path / "vs"))
    fig = sloped_valley(runs)
    gd1, noisy1, gd2, noisy2 = fig.axes
    assert (gd1.get_title(), noisy1.get_title()) == ("gradient descent", "noisy gradient descent")
    assert [ax.get_ylabel() for ax in fig.axes] == [r"$\theta_1$", r"$\theta_1$", r"$\theta_2$", r"$\theta_2$"]
    assert gd2.get_xlabel() == noisy2.get_xlabel() == "iteration"
    np.testing.assert_allclose(gd2.get_lines()[0].get_xdata(), VS_STEPS)
    np.testing.assert_allclose(gd2.get_lines()[0].get_ydata(), 0.1 - 1e-4 * VS_STEPS)
    np.testing.assert_allclose(noisy1.get_lines()[0].get_ydata(), 0.1 * np.sin(np.arange(len(VS_STEPS))))
    np.testing.assert_allclose(curve(noisy2, "mean over chains").get_ydata(),
                               -0.02 + 0.1 * np.exp(-np.arange(len(VS_STEPS)) / 10))
    eq38 = curve(noisy2, r"eq. 38: $-2\alpha/(\eta s)$ = -0.02")
    np.testing.assert_allclose(eq38.get_ydata(), [-0.02, -0.02])
    save(fig, tmp_path, "fig7")
    with pytest.raises(MissingData, match="run 'other' holds no valley_slope rows"):
        sloped_valley(runs, run="other")
