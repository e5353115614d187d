"""The sharpest-directions figures, drawn from runs and sweeps the tests store: axes, one line per
eigenvalue, run or grid point, the poster's labels, colours and log scales, and the stored values."""
import math

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from sgdscope.analysis import series
from sgdscope.store import RunWriter
from sgdscope.viz import FIGURES, MissingData, Runs, available, draw
from sgdscope.viz.sharpest import loss_along_top, loss_change_alpha, nudged_sgd, top_eigenvalues, top_two_per_lr

PER_EPOCH = 5
K = 10
GRID = np.linspace(-3, 3, 13)
ALPHAS = ("0.5", "1", "2")
ALL = ("top_eigenvalues", "sharpest_directions", "hessian_norms", "evaluation")


def eigenvalue(i, t, lr):
    """lambda_i at step t: a rise to a peak that is lower and earlier for a larger lr, then a decay."""
    top = 40 * (0.01 / lr) ** 0.5
    at = 10 / (lr / 0.01) ** 0.5
    return top * (t / at) * math.exp(1 - t / at) / i ** 0.7 + 0.5 / i


def write_run(path, *, lr=0.01, optimizer="sgd", seed=0, steps=40, probes=ALL, held_out="val", **optimizer_kw):
    nudged = optimizer == "nudged_sgd"
    with RunWriter(path, config={"name": path.name, "optimizer": {"name": optimizer, "lr": lr, **optimizer_kw},
                                 "train": {"batch_size": 128}, "seed": seed}) as w:
        w.declare({p: p for p in probes})
        for step in range(steps):
            t, epoch = step + 1, (step + 1) / PER_EPOCH
            if "top_eigenvalues" in probes and step % 2 == 0:
                values = [eigenvalue(i, t, lr) + 0.1 * seed for i in range(1, K + 1)]
                w.log(step, epoch, "top_eigenvalues", {**{f"lambda_{i}": v for i, v in enumerate(values, 1)},
                                                       "eigenvalues": np.array(values)})
            if "sharpest_directions" in probes and step % 4 == 0:
                curvature = eigenvalue(1, t, lr) / 40
                w.log(step, epoch, "sharpest_directions", {
                    "step_e1": 0.01, "lambda_1": eigenvalue(1, t, lr),
                    "loss_along": 2.0 / (1 + 0.1 * t) + curvature * GRID ** 2, "grid": GRID,
                    **{f"dloss_alpha_{a}": curvature * (float(a) ** 2 - 2 * float(a)) for a in ALPHAS}})
            if "hessian_norms" in probes and step % 2 == 0:
                scale = 10.0 if nudged else 1.0
                w.log(step, epoch, "hessian_norms", {"spectral_norm": scale * eigenvalue(1, t, lr),
                                                     "frobenius_norm": 3 * scale * eigenvalue(1, t, lr)})
            if "evaluation" in probes and t % PER_EPOCH == 0:
                acc = 1 - 0.9 * math.exp(-t / (10 if nudged else 20)) - 0.01 * seed
                w.log(step, epoch, "evaluation", {f"{held_out}_accuracy": acc})
        w.set_status("done")
    return path


def save(fig, tmp_path, name):
    fig.savefig(tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 5000


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run")


# --- Fig. 1a -------------------------------------------------------------------------------------------

def test_fig1a_one_line_per_eigenvalue_red_to_blue(run, tmp_path):
    fig = draw("sharpest.fig1a", run)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == K
    frame = Runs.open(run).frame
    for i in (1, 4, K):
        s = series(frame, f"top_eigenvalues/lambda_{i}")
        np.testing.assert_allclose(lines[i - 1].get_xdata(), s["epoch"])
        np.testing.assert_allclose(lines[i - 1].get_ydata(), s["value"])
    first, last = to_rgba(lines[0].get_color()), to_rgba(lines[-1].get_color())
    assert first[0] > 0.7 and first[2] < 0.3  # red
    assert last[2] > 0.6 and last[0] < 0.3  # blue
    assert ax.get_xlabel() == "epoch" and "lambda_i" in ax.get_ylabel()
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "rank $i$"  # a colour bar for k > 6
    save(fig, tmp_path, "fig1a")


def test_fig1a_from_the_arrays_when_the_rows_hold_lambda_1_only(tmp_path):
    path = tmp_path / "arrays"
    with RunWriter(path, config={"name": "arrays"}) as w:
        w.declare({"top_eigenvalues": "top_eigenvalues"})
        for step in range(4):
            w.log(step, step / 2, "top_eigenvalues",
                  {"lambda_1": 5.0 + step, "eigenvalues": np.array([5.0 + step, 3.0, 1.0])})
        w.set_status("done")
    fig = top_eigenvalues(Runs.open(path), x="step", log_y=True)
    ax = fig.axes[0]
    assert [l.get_label() for l in ax.get_lines()] == [r"$\lambda_{1}$", r"$\lambda_{2}$", r"$\lambda_{3}$"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), 5.0 + np.arange(4))
    np.testing.assert_allclose(ax.get_lines()[2].get_xdata(), np.arange(4))
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "iteration"


# --- Fig. 1b -------------------------------------------------------------------------------------------

def test_fig1b_lambda_1_and_2_per_learning_rate_on_a_log_scale(tmp_path):
    for lr in (0.01, 0.05):
        for seed in (0, 1):
            write_run(tmp_path / "s" / f"lr{lr}_s{seed}", lr=lr, seed=seed, probes=("top_eigenvalues",))
    fig = draw("sharpest.fig1b", tmp_path / "s")
    ax1, ax2 = fig.axes
    assert ax1.get_yscale() == ax2.get_yscale() == "log"
    assert ax1.get_ylabel() == r"$\lambda_1$" and ax2.get_ylabel() == r"$\lambda_2$"
    assert [l.get_label() for l in ax1.get_lines()] == [r"$\eta$=0.01 (mean of 2)", r"$\eta$=0.05 (mean of 2)"]
    frame = Runs.open(tmp_path / "s").frame
    mean = (series(frame, "top_eigenvalues/lambda_2", run="lr0.05_s0")["value"].to_numpy()
            + series(frame, "top_eigenvalues/lambda_2", run="lr0.05_s1")["value"].to_numpy()) / 2
    np.testing.assert_allclose(ax2.get_lines()[1].get_ydata(), mean)
    assert len(ax1.collections) == 2  # the seed bands
    assert np.argmax(ax1.get_lines()[1].get_ydata()) < np.argmax(ax1.get_lines()[0].get_ydata())  # earlier peak
    save(fig, tmp_path, "fig1b")


def test_fig1b_needs_a_learning_rate_sweep(run):
    with pytest.raises(MissingData, match="compares at least 2 runs"):
        draw("sharpest.fig1b", run)


# --- Fig. 2a, 2b ---------------------------------------------------------------------------------------

def test_fig2a_the_loss_along_e1_one_curve_per_probed_step(run, tmp_path):
    fig = draw("sharpest.fig2a", run, steps=4)
    ax = fig.axes[0]
    lines = [l for l in ax.get_lines() if l.get_label().startswith("t =")]
    assert [l.get_label() for l in lines] == ["t = 0", "t = 12", "t = 24", "t = 36"]
    runs = Runs.open(run)
    stored = runs.arrays("sharpest_directions/loss_along", "run")
    np.testing.assert_allclose(lines[2].get_ydata(), stored[24])
    np.testing.assert_allclose(lines[2].get_xdata(), GRID)
    assert ax.get_xlabel().startswith("$k$") and r"\Delta\theta_1(t)" in ax.get_ylabel()
    assert fig.axes[1].get_ylabel() == "iteration $t$"  # the colour bar
    assert lines[0].get_color() != lines[-1].get_color()
    fig = loss_along_top(runs, steps=[5, 30], relative=True)
    lines = fig.axes[0].get_lines()[:2]
    assert [l.get_label() for l in lines] == ["t = 4", "t = 28"]
    np.testing.assert_allclose(lines[0].get_ydata(), stored[4] - stored[4][6])
    save(fig, tmp_path, "fig2a")


def test_fig2b_red_green_blue_for_alpha_half_one_two(run, tmp_path):
    fig = draw("sharpest.fig2b", run)
    ax = fig.axes[0]
    lines = ax.get_lines()[:3]
    assert [l.get_label() for l in lines] == [r"$\alpha = 0.5$", r"$\alpha = 1$", r"$\alpha = 2$"]
    assert [l.get_color() for l in lines] == ["tab:red", "tab:green", "tab:blue"]
    s = series(Runs.open(run).frame, "sharpest_directions/dloss_alpha_0.5")
    np.testing.assert_allclose(lines[0].get_ydata(), s["value"])
    np.testing.assert_allclose(lines[0].get_xdata(), s["epoch"])
    assert ax.get_ylabel().startswith(r"$\Delta\mathcal{L}$")
    save(fig, tmp_path, "fig2b")
    fig = loss_change_alpha(Runs.open(run), x="step", smooth=3)
    assert fig.axes[0].get_xlabel() == "iteration"


# --- Nudged SGD ----------------------------------------------------------------------------------------

def test_nsgd_accuracy_and_the_norms_solid_and_dashed_per_optimizer(tmp_path):
    for optimizer in ("sgd", "nudged_sgd"):
        write_run(tmp_path / "s" / optimizer, optimizer=optimizer)
    fig = draw("sharpest.nsgd", tmp_path / "s")
    ax_acc, ax_norm = fig.axes
    assert [l.get_label() for l in ax_acc.get_lines()] == ["SGD", "NSGD"]
    assert ax_acc.get_ylabel() == "validation accuracy" and ax_acc.get_xlabel() == "epoch"
    assert ax_norm.get_yscale() == "log"
    spectral_sgd, frobenius_sgd, spectral_nsgd, _ = ax_norm.get_lines()
    assert spectral_sgd.get_linestyle() == "-" and frobenius_sgd.get_linestyle() == "--"
    assert spectral_sgd.get_color() == frobenius_sgd.get_color() != spectral_nsgd.get_color()
    frame = Runs.open(tmp_path / "s").frame
    np.testing.assert_allclose(frobenius_sgd.get_ydata(),
                               series(frame, "hessian_norms/frobenius_norm", run="sgd")["value"])
    np.testing.assert_allclose(ax_acc.get_lines()[1].get_ydata(),
                               series(frame, "evaluation/val_accuracy", run="nudged_sgd")["value"])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["SGD", "NSGD", r"spectral norm $\|H\|_2$", r"Frobenius norm $\|H\|_F$"]
    save(fig, tmp_path, "nsgd")


def test_nsgd_labels_name_the_optimizer_without_the_keys_sgd_lacks(tmp_path):
    write_run(tmp_path / "s" / "a", optimizer="nudged_sgd", gamma=0.1, k=5, steps=10)
    write_run(tmp_path / "s" / "b", optimizer="sgd", steps=10)
    fig = nudged_sgd(Runs.open(tmp_path / "s"))
    assert [l.get_label() for l in fig.axes[0].get_lines()] == ["SGD", "NSGD, gamma=0.1, k=5"]


def test_nsgd_falls_back_to_test_accuracy_and_names_missing_probes(tmp_path):
    run = write_run(tmp_path / "test", held_out="test", probes=("hessian_norms", "evaluation"))
    fig = nudged_sgd(Runs.open(run))
    assert fig.axes[0].get_ylabel() == "test accuracy"
    bare = write_run(tmp_path / "bare", probes=("hessian_norms",))
    with pytest.raises(MissingData, match=r"evaluation/test_accuracy: add the evaluation probe"):
        draw("sharpest.nsgd", bare)


# --- all ------------------------------------------------------------------------------------------------

def test_missing_probes_are_named(tmp_path):
    run = write_run(tmp_path / "r", probes=("evaluation",))
    ok, why = available(run)
    for name, probe in (("sharpest.fig1a", "top_eigenvalues"), ("sharpest.fig2a", "sharpest_directions"),
                        ("sharpest.fig2b", "sharpest_directions"), ("sharpest.nsgd", "hessian_norms")):
        assert name not in ok and f"add the {probe} probe" in why[name], name
        with pytest.raises(MissingData, match=probe):
            draw(name, run)


def test_the_sharpest_figures_are_registered():
    names = {n for n in FIGURES if n.startswith("sharpest.")}
    assert names == {"sharpest.fig1a", "sharpest.fig1b", "sharpest.fig2a", "sharpest.fig2b", "sharpest.nsgd"}
    assert FIGURES["sharpest.fig1b"].fn is top_two_per_lr and FIGURES["sharpest.fig1b"].varies == ("optimizer.lr", "train.batch_size")
