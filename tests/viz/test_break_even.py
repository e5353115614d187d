"""The Break-Even figures, drawn from runs and sweeps the tests store: axes, one line or point group
per run or grid point, the paper's labels and scales, the accuracy lines, and the stored values."""
import math
import sys

import numpy as np
import pytest
from matplotlib.collections import PathCollection, QuadMesh

import sgdscope
from sgdscope.analysis import accuracy_crossing, peak, series
from sgdscope.store import RunWriter
from sgdscope.viz import FIGURES, MissingData, Runs, available, draw
from sgdscope.viz.break_even import (batch_size_trajectories, curvature_vs_noise, lr_trajectories,
                                     spectra_at_peak, trace_and_accuracy, trajectory_embedding)

PER_EPOCH = 4  # steps per epoch; the evaluation probe records at epoch ends
ALL = ("gradient_noise", "top_eigenvalues", "loss_change", "evaluation", "bn_scale_norm", "predictions")
TEST_LOGITS = np.random.default_rng(123).normal(size=(30, 3))  # one shared "test subset"


def write_run(path, *, lr=0.1, batch_size=32, seed=0, model="simplecnn", steps=24, probes=ALL, density=False, k_h=5):
    """A run whose curves look like the paper's: lambda_K^1 and lambda_H^1 rise to a peak that is
    lower for a larger lr / smaller batch; accuracy rises faster for a larger lr."""
    scale = (0.1 / lr) ** 0.5 * (batch_size / 32) ** 0.5
    bn = model.endswith("_bn")
    with RunWriter(path, config={"name": path.name, "model": {"name": model}, "optimizer": {"lr": lr},
                                 "train": {"batch_size": batch_size}, "seed": seed}) as w:
        w.declare({p: p for p in probes} | ({"spectral_density": "spectral_density"} if density else {}))
        for step in range(steps):
            t, epoch = step + 1, (step + 1) / PER_EPOCH
            bump = t / 8 * math.exp(1 - t / 8)  # peaks at step 7
            lam_k = (2.0 * scale * bump + 0.1 + 0.02 * seed) * (1.5 if bn else 1.0)
            lam_h = 30.0 * scale * bump + 2.0 + 0.3 * seed
            if "gradient_noise" in probes:
                w.log(step, epoch, "gradient_noise", {
                    "lambda_1": lam_k, "ratio": 0.1 + 0.2 * (1 - bump) / scale, "trace": 3 * lam_k + 0.5,
                    "g_ratio": 1.2 + 0.5 * bump, "spectrum": np.append(lam_k * np.exp(-np.arange(7) / scale), 1e-17)})
            if "top_eigenvalues" in probes:
                w.log(step, epoch, "top_eigenvalues", {"lambda_1": lam_h, "eigenvalues": lam_h / (1 + np.arange(k_h)) ** scale})
            if "loss_change" in probes:
                w.log(step, epoch, "loss_change", {"delta_loss": 0.05 * (1 - t / 9) + 0.01 * math.sin(t)})
            if "bn_scale_norm" in probes:
                w.log(step, epoch, "bn_scale_norm", {"last": 4.0 - lr * t if bn else math.nan})
            if "predictions" in probes and step % 2 == 0:
                logits = TEST_LOGITS * (0.1 + lr * t) + 0.05 * seed
                probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
                w.log(step, epoch, "predictions", {"probs": probs.astype(np.float32)})
            if density and step % 4 == 0:
                grid = np.linspace(-1, lam_h, 50)
                w.log(step, epoch, "spectral_density", {"grid": grid, "density": np.exp(-grid ** 2) + 1e-4})
            if "evaluation" in probes and t % PER_EPOCH == 0:
                acc = 1 - 0.9 * math.exp(-t * lr ** 0.5 / (0.6 * scale))
                w.log(step, epoch, "evaluation", {"train_accuracy": acc, "test_accuracy": 0.9 * acc})
        w.set_status("done")
    return path


def write_sweep(root, *, lrs=(0.01, 0.1), batch_sizes=(32,), seeds=(0,), models=("simplecnn",), **kw):
    for model in models:
        for lr in lrs:
            for bs in batch_sizes:
                for seed in seeds:
                    write_run(root / f"{model}_lr{lr}_bs{bs}_s{seed}", lr=lr, batch_size=bs, seed=seed, model=model, **kw)
    return root


def save(fig, tmp_path, name):
    fig.savefig(tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 5000


def stored(runs, metric, run):
    s = series(runs.frame, metric, run=run)
    return s["epoch"].to_numpy(), s["value"].to_numpy()


def legend_texts(fig):
    return [t.get_text() for t in fig.legends[0].get_texts()]


@pytest.fixture
def lr_sweep(tmp_path):
    return write_sweep(tmp_path / "lr", seeds=(0, 1))


def test_fig4_one_line_per_learning_rate_mean_over_seeds_and_accuracy_lines(lr_sweep, tmp_path):
    runs = Runs.open(lr_sweep)
    fig = draw("break_even.fig4", lr_sweep)
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == [r"$\lambda_K^1$", r"$\lambda_K^*/\lambda_K^1$", r"$\lambda_H^1$"]
    assert {ax.get_xlabel() for ax in axes} == {"epoch"} and {ax.get_yscale() for ax in axes} == {"linear"}
    assert legend_texts(fig) == [r"$\eta$=0.01 (mean of 2)", r"$\eta$=0.1 (mean of 2)", r"train acc. $\geq$ 60%"]
    assert fig.legends[0].get_title().get_text() == "optimizer.lr"
    for ax, metric in zip(axes, ("gradient_noise/lambda_1", "gradient_noise/ratio", "top_eigenvalues/lambda_1")):
        curves = [l for l in ax.get_lines() if len(l.get_xdata()) > 2]
        assert len(curves) == 2 and len(ax.collections) == 2  # a band per learning rate
        for line, lr in zip(curves, (0.01, 0.1)):
            epochs, v0 = stored(runs, metric, f"simplecnn_lr{lr}_bs32_s0")
            _, v1 = stored(runs, metric, f"simplecnn_lr{lr}_bs32_s1")
            np.testing.assert_allclose(line.get_xdata(), epochs)
            np.testing.assert_allclose(line.get_ydata(), (v0 + v1) / 2)
        vlines = [l for l in ax.get_lines() if len(l.get_xdata()) == 2 and l.get_xdata()[0] == l.get_xdata()[1]]
        want = [np.mean([accuracy_crossing(runs.frame, 0.6, run=f"simplecnn_lr{lr}_bs32_s{s}").epoch for s in (0, 1)])
                for lr in (0.01, 0.1)]
        assert sorted(l.get_xdata()[0] for l in vlines) == pytest.approx(sorted(want))
        assert want[1] < want[0]  # the larger learning rate gets there first
    save(fig, tmp_path, "fig4")


def test_fig4_single_seed_lines_are_the_stored_values_and_the_threshold_is_an_option(tmp_path):
    root = write_sweep(tmp_path / "lr", lrs=(0.01, 0.03, 0.1))
    runs = Runs.open(root)
    fig = lr_trajectories(runs, threshold=0.9, x="step", log_y=True)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step"
    lines = [l for l in ax.get_lines() if len(l.get_xdata()) > 2]
    assert len(lines) == 3 and not ax.collections  # no band for one seed
    for line, lr in zip(lines, (0.01, 0.03, 0.1)):
        np.testing.assert_allclose(line.get_ydata(), stored(runs, "gradient_noise/lambda_1", f"simplecnn_lr{lr}_bs32_s0")[1])
        np.testing.assert_allclose(line.get_xdata(), np.arange(24))
    steps = sorted(l.get_xdata()[0] for l in ax.get_lines() if len(l.get_xdata()) == 2)
    want = [accuracy_crossing(runs.frame, 0.9, run=f"simplecnn_lr{lr}_bs32_s0").step for lr in (0.01, 0.03, 0.1)]
    assert steps == sorted(s for s in want if s is not None) and "90%" in legend_texts(fig)[-1]
    smoothed = lr_trajectories(runs, smooth=3, threshold=None)
    assert len(smoothed.axes[0].get_lines()) == 3 and "60%" not in " ".join(legend_texts(smoothed))


def test_fig5_groups_by_batch_size_and_needs_a_batch_size_sweep(lr_sweep, tmp_path):
    root = write_sweep(tmp_path / "bs", lrs=(0.1,), batch_sizes=(128, 32))
    fig = draw("break_even.fig5", root)
    assert legend_texts(fig)[:2] == ["$S$=32", "$S$=128"]
    runs = Runs.open(root)
    line = [l for l in fig.axes[2].get_lines() if len(l.get_xdata()) > 2][1]
    np.testing.assert_allclose(line.get_ydata(), stored(runs, "top_eigenvalues/lambda_1", "simplecnn_lr0.1_bs128_s0")[1])
    save(fig, tmp_path, "fig5")
    with pytest.raises(MissingData, match=r"train.batch_size.*give it a sweep over train.batch_size"):
        draw("break_even.fig5", lr_sweep)
    with pytest.raises(MissingData, match=r"optimizer.lr"):
        draw("break_even.fig4", root)
    assert batch_size_trajectories(Runs.open(lr_sweep), by="optimizer.lr").axes  # by= overrides the grouping


def test_missing_metrics_name_the_probe(tmp_path):
    root = write_sweep(tmp_path / "s", probes=("gradient_noise", "loss_change", "evaluation"))
    with pytest.raises(MissingData, match=r"top_eigenvalues/lambda_1: add the top_eigenvalues probe"):
        draw("break_even.fig4", root)
    with pytest.raises(MissingData, match=r"top_eigenvalues/lambda_1: add the top_eigenvalues probe"):
        lr_trajectories(Runs.open(root))  # called directly too
    with pytest.raises(MissingData, match=r"predictions/probs: add the predictions probe"):
        draw("break_even.fig1", root)
    with pytest.raises(MissingData, match=r"bn_scale_norm/last: add the bn_scale_norm probe"):
        draw("break_even.fig7", root)
    ok, why = available(root)
    assert "break_even.app_e" in ok and "top_eigenvalues" in why["break_even.fig2"]


def test_fig2_points_per_run_filled_up_to_the_peak_of_lambda_k(lr_sweep, tmp_path):
    runs = Runs.open(lr_sweep)
    fig = draw("break_even.fig2", lr_sweep)
    left, right = fig.axes
    assert left.get_xlabel() == right.get_xlabel() == r"$\lambda_K^1$"
    assert (left.get_ylabel(), right.get_ylabel()) == (r"$\lambda_H^1$", r"$\Delta\mathcal{L}$")
    assert legend_texts(fig) == [r"$\eta$=0.01", r"$\eta$=0.1", r"up to max $\lambda_K^1$", r"after max $\lambda_K^1$"]
    for ax, metric in ((left, "top_eigenvalues/lambda_1"), (right, "loss_change/delta_loss")):
        points = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert len(points) == 4  # one group of points per run
        for coll, run in zip(points, [f"simplecnn_lr{lr}_bs32_s{s}" for lr in (0.01, 0.1) for s in (0, 1)]):
            np.testing.assert_allclose(coll.get_offsets(), np.column_stack([stored(runs, "gradient_noise/lambda_1", run)[1],
                                                                             stored(runs, metric, run)[1]]))
            filled = coll.get_facecolors()[:, 3] > 0
            top = peak(series(runs.frame, "gradient_noise/lambda_1", run=run)).step
            np.testing.assert_array_equal(filled, np.arange(24) <= top)
    assert any(list(l.get_ydata()) == [0, 0] for l in right.get_lines())  # Delta L = 0
    save(fig, tmp_path, "fig2")
    early = curvature_vs_noise(runs, until_accuracy=0.6, log=True)
    assert early.axes[0].get_xscale() == "log" and early.axes[0].get_yscale() == "log"
    cut = accuracy_crossing(runs.frame, 0.6, run="simplecnn_lr0.1_bs32_s0").step
    assert len(early.axes[0].collections[2].get_offsets()) == cut + 1


def test_fig3_spectra_at_the_maxima_per_learning_rate(lr_sweep, tmp_path):
    runs = Runs.open(lr_sweep)
    fig = draw("break_even.fig3", lr_sweep)
    ax_k, ax_h = fig.axes
    assert ax_k.get_yscale() == ax_h.get_yscale() == "log"
    assert (ax_k.get_ylabel(), ax_h.get_ylabel(), ax_k.get_xlabel()) == (r"$\lambda_K^i$", r"$\lambda_H^i$", "rank $i$")
    for ax, metric, array in ((ax_k, "gradient_noise/lambda_1", "gradient_noise/spectrum"),
                              (ax_h, "top_eigenvalues/lambda_1", "top_eigenvalues/eigenvalues")):
        lines = ax.get_lines()
        assert len(lines) == 2  # one per learning rate (its first seed)
        for line, lr in zip(lines, (0.01, 0.1)):
            run = f"simplecnn_lr{lr}_bs32_s0"
            top = peak(series(runs.frame, metric, run=run)).step
            values = runs.arrays(array, run)[top]
            if array == "gradient_noise/spectrum":
                values = values[:-1]  # K's numerically zero eigenvalue is left out
            np.testing.assert_allclose(line.get_ydata(), values)
            assert line.get_label() == rf"$\eta$={lr:g} (step {top})"
    save(fig, tmp_path, "fig3")


def test_fig3_draws_one_or_two_eigenvalues_of_h_as_labelled_points_on_a_linear_axis(tmp_path):
    runs = Runs.open(write_sweep(tmp_path / "k1", k_h=1))
    fig = spectra_at_peak(runs)
    ax_k, ax_h = fig.axes
    assert ax_k.get_yscale() == "log" and ax_h.get_yscale() == "linear"
    labels = [t.get_text() for t in ax_h.texts]
    assert "a spectrum needs top_eigenvalues.k >= 3" in labels
    for line in ax_h.get_lines():  # each run's one value, written beside its point
        (value,) = line.get_ydata()
        assert f"{value:.4g}" in labels
    save(fig, tmp_path, "fig3_k1")
    assert spectra_at_peak(Runs.open(write_sweep(tmp_path / "k3", k_h=3))).axes[1].get_yscale() == "log"


def test_fig3_draws_the_slq_density_of_h_when_stored(tmp_path):
    root = write_sweep(tmp_path / "d", density=True)
    runs = Runs.open(root)
    fig = spectra_at_peak(runs)
    ax_h = fig.axes[1]
    assert ax_h.get_xlabel() == r"eigenvalue $\lambda_H$" and ax_h.get_ylabel() == "density"
    line = ax_h.get_lines()[0]
    top = peak(series(runs.frame, "top_eigenvalues/lambda_1", run="simplecnn_lr0.01_bs32_s0")).step  # densities at 0, 4, 8, ...
    assert top == 7 and line.get_label() == r"$\eta$=0.01 (step 8, max at 7)"
    np.testing.assert_allclose(line.get_xdata(), runs.arrays("spectral_density/grid", "simplecnn_lr0.01_bs32_s0")[8])
    np.testing.assert_allclose(line.get_ydata(), runs.arrays("spectral_density/density", "simplecnn_lr0.01_bs32_s0")[8])
    assert len(spectra_at_peak(runs, hessian="eigenvalues").axes[1].get_lines()[0].get_xdata()) == 5
    save(fig, tmp_path, "fig3_density")


def test_fig7_one_line_per_run_colour_by_lr_style_by_model(tmp_path):
    root = write_sweep(tmp_path / "bn", lrs=(0.01, 0.1, 1.0), models=("simplecnn", "simplecnn_bn"))
    runs = Runs.open(root)
    fig = draw("break_even.fig7", root)
    assert len(fig.axes) == 4
    assert [ax.get_ylabel() for ax in fig.axes] == [r"$\lambda_K^1$", r"$\lambda_K^*/\lambda_K^1$", r"$\|g\|/\|g_5\|$",
                                                    r"$\|\gamma\|$"]
    for ax, metric in zip(fig.axes, ("gradient_noise/lambda_1", "gradient_noise/ratio", "gradient_noise/g_ratio",
                                     "bn_scale_norm/last")):
        lines = ax.get_lines()
        models = ("simplecnn_bn",) if metric == "bn_scale_norm/last" else ("simplecnn", "simplecnn_bn")
        assert [l.get_label() for l in lines] == [f"model={m}, $\\eta$={lr:g}" for m in models for lr in (0.01, 0.1, 1.0)]
        for line, (m, lr) in zip(lines, [(m, lr) for m in models for lr in (0.01, 0.1, 1.0)]):
            np.testing.assert_allclose(line.get_ydata(), stored(runs, metric, f"{m}_lr{lr}_bs32_s0")[1])
            assert line.get_linestyle() == ("-" if m == "simplecnn" else "--")
    colours = [tuple(l.get_color()) for l in fig.axes[0].get_lines()]
    assert colours[:3] == colours[3:] and len(set(colours[:3])) == 3
    save(fig, tmp_path, "fig7")


def test_app_e_accuracies_and_trace_per_learning_rate(lr_sweep, tmp_path):
    runs = Runs.open(lr_sweep)
    fig = draw("break_even.app_e", lr_sweep)
    assert [ax.get_ylabel() for ax in fig.axes] == ["training accuracy", "test accuracy", r"$\mathrm{Tr}(\mathbf{K})$"]
    assert fig.axes[0].get_ylim() == (0, 1.02)
    for ax, metric in zip(fig.axes, ("evaluation/train_accuracy", "evaluation/test_accuracy", "gradient_noise/trace")):
        lines = ax.get_lines()
        assert len(lines) == 2
        epochs, v0 = stored(runs, metric, "simplecnn_lr0.1_bs32_s0")
        np.testing.assert_allclose(lines[1].get_xdata(), epochs)
        np.testing.assert_allclose(lines[1].get_ydata(), (v0 + stored(runs, metric, "simplecnn_lr0.1_bs32_s1")[1]) / 2)
    save(fig, tmp_path, "app_e")
    with pytest.raises(MissingData, match="evaluation/val_accuracy"):
        trace_and_accuracy(runs, held_out="val")


def _fig1_checks(fig, runs, method):
    """Checks shared by both embeddings; the points' coordinates, both trajectories stacked."""
    left, right = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert left.get_xlabel() == f"{method} 1" and right.get_ylabel() == f"{method} 2"
    assert (left.get_title(), right.get_title()) == (r"background: $\lambda_K^1$", "background: training accuracy")
    for ax, metric in ((left, "gradient_noise/lambda_1"), (right, "evaluation/train_accuracy")):
        (mesh,) = [c for c in ax.collections if isinstance(c, QuadMesh)]
        background = np.asarray(mesh.get_array()).ravel()
        recorded = series(runs.frame, metric)["value"].to_numpy()
        if metric == "gradient_noise/lambda_1":  # recorded at every embedded step: stored values only
            assert set(np.round(background, 9)) <= set(np.round(recorded, 9))
        else:  # recorded at epoch ends: linear between records
            assert recorded.min() - 1e-12 <= background.min() and background.max() <= recorded.max() + 1e-12
    points = [c for c in left.collections if isinstance(c, PathCollection)][::2]  # points, then the start square
    assert len(points) == 2  # one trajectory per learning rate
    cut = accuracy_crossing(runs.frame, 0.65, run="simplecnn_lr0.1_bs32_s0").step
    assert len(points[1].get_offsets()) == len([s for s in range(0, 24, 2) if s <= cut])
    return np.concatenate([p.get_offsets() for p in points])


def test_fig1_umap_embedding_is_deterministic(lr_sweep, tmp_path):
    pytest.importorskip("umap")
    runs = Runs.open(lr_sweep)
    fig = draw("break_even.fig1", lr_sweep)
    assert "UMAP" in fig.get_suptitle()
    xy = _fig1_checks(fig, runs, "UMAP")
    np.testing.assert_allclose(_fig1_checks(trajectory_embedding(runs), runs, "UMAP"), xy)
    save(fig, tmp_path, "fig1_umap")


def test_fig1_falls_back_to_pca_without_umap(lr_sweep, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap -> ImportError
    runs = Runs.open(lr_sweep)
    fig = draw("break_even.fig1", lr_sweep)
    assert "(PCA)" in fig.get_suptitle() and "umap-learn is not installed" in fig._supxlabel.get_text()
    xy = _fig1_checks(fig, runs, "PCA")
    # the coordinates are the first two principal components of the stacked predictions
    rows = []
    for run in ("simplecnn_lr0.01_bs32_s0", "simplecnn_lr0.1_bs32_s0"):
        cut = accuracy_crossing(runs.frame, 0.65, run=run).step or math.inf
        probs = runs.arrays("predictions/probs", run)
        rows += [probs[s].ravel() for s in sorted(probs) if s <= cut]
    x = np.stack(rows).astype(float)
    u, s, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    np.testing.assert_allclose(np.abs(xy), np.abs(u[:, :2] * s[:2]), atol=1e-9)
    save(fig, tmp_path, "fig1_pca")
    with pytest.raises(ImportError, match=r"sgdscope\[umap\]"):
        trajectory_embedding(runs, method="umap")


def test_fig1_selected_runs_and_other_metrics(lr_sweep):
    runs = Runs.open(lr_sweep)
    fig = trajectory_embedding(runs, select=["simplecnn_lr0.1_bs32_s1"], method="pca", until_accuracy=None,
                               metrics=("gradient_noise/ratio", "gradient_noise/trace", "top_eigenvalues/lambda_1"))
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(axes) == 3 and axes[2].get_title() == r"background: $\lambda_H^1$"
    (points, start) = [c for c in axes[0].collections if isinstance(c, PathCollection)]
    assert len(points.get_offsets()) == 12 and points.get_label() == r"$\eta$=0.1 (simplecnn_lr0.1_bs32_s1)"
    with pytest.raises(ValueError, match="select"):
        trajectory_embedding(runs, select=["nope"])


def test_every_break_even_figure_is_registered_and_drawn_from_a_full_sweep(tmp_path):
    root = write_sweep(tmp_path / "full", lrs=(0.01, 0.1), batch_sizes=(32, 128), models=("simplecnn", "simplecnn_bn"))
    names = sorted(n for n in FIGURES if n.startswith("break_even."))
    assert names == ["break_even.app_e", "break_even.fig1", "break_even.fig2", "break_even.fig3", "break_even.fig4",
                     "break_even.fig5", "break_even.fig7"]
    ok, why = available(root)
    assert set(names) <= set(ok), why
    for name in names:
        fig = draw(name, root, **({"method": "pca"} if name == "break_even.fig1" else {}))
        assert FIGURES[name].paper.startswith("Break-Even")
        save(fig, tmp_path, name)


def test_a_dataframe_source_draws_the_metric_figures(lr_sweep):
    runs = Runs.of(sgdscope.load_sweep(lr_sweep))
    assert len(lr_trajectories(runs).axes) == 3
    with pytest.raises(MissingData, match="gradient_noise/spectrum"):  # arrays need the run folders
        spectra_at_peak(runs)
    one = Runs.open(lr_sweep / "simplecnn_lr0.1_bs32_s0")
    assert len(curvature_vs_noise(one).axes) == 2
