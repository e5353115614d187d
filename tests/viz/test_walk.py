"""The Walk with SGD figures, drawn from runs and sweeps the tests store: axes, one line or bar group
per run or grid point, the paper's labels and scales, and the stored values."""
import math

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer, ErrorbarContainer

from sgdscope.analysis import barriers_per_epoch, series
from sgdscope.store import RunWriter
from sgdscope.viz import FIGURES, MissingData, Runs, available, draw
from sgdscope.viz.walk import alignment, barrier_table, barriers, gradient_cosine, interpolation_window

PER_EPOCH = 10  # steps per epoch
POINTS = 10  # interpolation points per segment, ends included
SIZES = (8, 32, 128)
ALL = ("train", "interpolation", "alignment", "gradient_cosine")


def loss_at(t, lr):
    return 2.0 * math.exp(-lr * t / 4) + 0.1


def segment(t, lr):
    """The loss on the segment of step t: a valley between the iterates; a bump (a crossed
    barrier) at every 7th step."""
    alphas = np.linspace(0, 1, POINTS)
    a, b = loss_at(t, lr), loss_at(t + 1, lr)
    bend = 0.03 if t % 7 == 3 else -0.05
    return (1 - alphas) * a + alphas * b + 4 * bend * alphas * (1 - alphas)


def write_run(path, *, lr=0.1, batch_size=32, seed=0, epochs=5, probes=ALL, every=1):
    with RunWriter(path, config={"name": path.name, "optimizer": {"lr": lr}, "train": {"batch_size": batch_size},
                                 "seed": seed}) as w:
        w.declare({p: p for p in probes})
        crossed_epoch = probed_epoch = 0
        for step in range(epochs * PER_EPOCH):
            epoch = (step + 1) / PER_EPOCH
            end = (step + 1) % PER_EPOCH == 0
            if "train" in probes:
                w.log(step, epoch, "train", {"loss": loss_at(step, lr) + 0.01 * seed})
            if "interpolation" in probes and (step % every == 0 or end):
                curve = segment(step, lr) + 0.001 * seed
                top, ends = curve[1:-1].max(), max(curve[0], curve[-1])
                i = int(np.argmin(curve))
                crossed = float(top > ends)
                crossed_epoch += int(crossed)
                probed_epoch += 1
                values = {"crossed": crossed, "barrier": top - ends, "height": 2 * top - curve[0] - curve[-1],
                          "valley_floor": curve[i], "valley_alpha": i / (POINTS - 1), "curve": curve}
                if end:
                    values |= {"barriers_epoch": float(crossed_epoch), "probed_epoch": float(probed_epoch)}
                    crossed_epoch = probed_epoch = 0
                w.log(step, epoch, "interpolation", values)
            if "alignment" in probes and end:
                w.log(step, epoch, "alignment", {
                    **{f"mean_M{m}": alignment_mean(m, epoch, seed) for m in SIZES},
                    **{f"std_M{m}": 2.0 / math.sqrt(m) for m in SIZES}})
            if "gradient_cosine" in probes:
                w.log(step, epoch, "gradient_cosine",
                      {"cosine": math.nan if step == 0 else cosine(step, batch_size)})
        w.set_status("done")
    return path


def cosine(step, batch_size):
    """Smaller for a larger batch, as the paper finds."""
    return 0.2 - 0.1 * math.log(batch_size, 4) + 0.05 * math.sin(step)


def alignment_mean(m, epoch, seed=0):
    return 1.0 + math.log2(m) + 0.1 * epoch + 0.2 * seed


def write_sweep(root, *, lrs=(0.1,), batch_sizes=(32,), seeds=(0,), **kw):
    for lr in lrs:
        for bs in batch_sizes:
            for seed in seeds:
                write_run(root / f"lr{lr}_bs{bs}_s{seed}", lr=lr, batch_size=bs, seed=seed, **kw)
    return root


def save(fig, tmp_path, name):
    fig.savefig(tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 5000


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run")


# --- Fig. 1-3 ------------------------------------------------------------------------------------------

def test_fig1_draws_the_curves_at_step_plus_alpha_and_the_valley_floor_dashed(run, tmp_path):
    fig = draw("walk.fig1", run, start=12, window=8)
    ax = fig.axes[0]
    curve, iterates, floor = ax.get_lines()
    x, y = curve.get_xdata(), curve.get_ydata()
    expected = [segment(t, 0.1) for t in range(12, 20)]
    np.testing.assert_allclose(y, np.concatenate(expected))
    np.testing.assert_allclose(x, np.concatenate([t + np.linspace(0, 1, POINTS) for t in range(12, 20)]))
    np.testing.assert_allclose(iterates.get_xdata(), np.arange(12, 21))
    np.testing.assert_allclose(iterates.get_ydata(), [loss_at(t, 0.1) for t in range(12, 21)])
    assert floor.get_linestyle() == "--" and floor.get_label() == "valley floor"
    rows = Runs.open(run).frame
    floors = series(rows, "interpolation/valley_floor").set_index("step")["value"]
    alphas = series(rows, "interpolation/valley_alpha").set_index("step")["value"]
    np.testing.assert_allclose(floor.get_ydata(), floors.loc[12:19].to_numpy())
    np.testing.assert_allclose(floor.get_xdata(), np.arange(12, 20) + alphas.loc[12:19].to_numpy())
    assert ax.get_xlim() == (12, 20) and ax.get_xlabel() == "iteration" and "loss" in ax.get_ylabel()
    assert any(isinstance(c, LineCollection) and len(c.get_segments()) == 9 for c in ax.collections)  # grey lines
    assert "epoch 2" in ax.get_title()
    save(fig, tmp_path, "fig1")


def test_fig1_defaults_to_windows_at_epochs_1_2_and_the_end_and_breaks_at_gaps(tmp_path):
    run = write_run(tmp_path / "sparse", every=3, epochs=12)  # every 3rd step and the epoch ends
    fig = interpolation_window(Runs.open(run))
    # epoch 2 starts at step 12, inside the first window: left out; the last window is cut at the last curve
    assert [a.get_title() for a in fig.axes] == ["iterations 0-40, epoch 1", "iterations 81-120, epoch 9"]
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert np.isnan(y).sum() > 0  # steps 0, 3, 6, 9 (epoch end), 12, ...: not consecutive
    fig = interpolation_window(Runs.open(run), start=[0, 20], window=40)
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="no interpolation/curve in steps"):
        interpolation_window(Runs.open(run), start=1000)
    save(fig, tmp_path, "fig1_sparse")


# --- Table 1 and Fig. 4 --------------------------------------------------------------------------------

def test_table1_counts_barriers_per_epoch_per_grid_point(tmp_path):
    sweep = write_sweep(tmp_path / "s", lrs=(0.1, 0.5), seeds=(0, 1))
    fig = draw("walk.table1", sweep, epochs=[1, 2, 5])
    table = fig.axes[0].tables[0]
    cells = table.get_celld()
    assert cells[(0, 0)].get_text().get_text() == "epoch 1"
    counts = barriers_per_epoch(Runs.open(sweep / "lr0.1_bs32_s0").frame)
    expected = counts.set_index("epoch")["crossed"]
    assert [cells[(1, j)].get_text().get_text() for j in range(3)] == [
        f"{expected[e]:.0f} / {PER_EPOCH}" for e in (1, 2, 5)]
    assert cells[(1, -1)].get_text().get_text() == r"$\eta$=0.1 (mean of 2)"
    assert cells[(2, -1)].get_text().get_text() == r"$\eta$=0.5 (mean of 2)"
    save(fig, tmp_path, "table1")
    with pytest.raises(ValueError, match=r"epochs \[9\] have no barrier counts"):
        draw("walk.table1", sweep, epochs=[9])


def test_fig4_bars_per_run_and_the_heights_of_crossed_barriers(tmp_path):
    sweep = write_sweep(tmp_path / "s", lrs=(0.1,), batch_sizes=(32, 128))
    fig = draw("walk.fig4", sweep)
    ax_bars, ax_heights = fig.axes
    bars = [c for c in ax_bars.containers if isinstance(c, BarContainer)]
    assert len(bars) == 2 and all(len(b) == 5 for b in bars)
    counts = barriers_per_epoch(Runs.open(sweep / "lr0.1_bs32_s0").frame)
    np.testing.assert_allclose([r.get_height() for r in bars[0]], counts["crossed"])
    assert ax_bars.get_xlabel() == "epoch" and ax_bars.get_ylabel() == "barriers crossed"
    assert ax_bars.get_title() == f"of {PER_EPOCH} probed steps per epoch"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["$B$=32", "$B$=128"]
    assert ax_heights.get_yscale() == "log"
    heights = ax_heights.collections[0].get_offsets()
    crossed_steps = [t for t in range(5 * PER_EPOCH) if t % 7 == 3]
    assert len(heights) == len(crossed_steps)
    stored = series(Runs.open(sweep / "lr0.1_bs32_s0").frame, "interpolation/height").set_index("step")["value"]
    np.testing.assert_allclose(heights[:, 1], stored.loc[crossed_steps])
    epochs = np.ceil((np.array(crossed_steps) + 1) / PER_EPOCH)
    np.testing.assert_allclose(heights[:, 0], epochs - 0.2)  # at their epoch, shifted as the group's bars
    save(fig, tmp_path, "fig4")


def test_fig4_without_heights_or_barriers(tmp_path):
    run = write_run(tmp_path / "r", epochs=1)
    fig = barriers(Runs.open(run), heights=False)
    assert len(fig.axes) == 1


# --- Fig. 5 --------------------------------------------------------------------------------------------

def test_fig5_plots_mean_and_std_against_batch_size_at_the_last_step(run, tmp_path):
    fig = draw("walk.fig5", run)
    ax = fig.axes[0]
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    line = bars.lines[0]
    np.testing.assert_allclose(line.get_xdata(), SIZES)
    np.testing.assert_allclose(line.get_ydata(), [alignment_mean(m, 5.0) for m in SIZES])
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in segments], [4.0 / math.sqrt(m) for m in SIZES])
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "batch size $B$"
    assert ax.get_ylabel() == r"$g_B^\top H g_B \,/\, \|g_B\|^2$"
    assert ax.get_title() == "last probed step: step 49, epoch 5"
    save(fig, tmp_path, "fig5")


def test_fig5_panels_at_steps_and_averaged(tmp_path):
    sweep = write_sweep(tmp_path / "s", lrs=(0.1, 0.5))
    fig = alignment(Runs.open(sweep), steps=[20, "mean"])
    at, mean = fig.axes
    assert at.get_title() == "nearest to 20: step 19, epoch 2"
    assert mean.get_title() == "mean over 5 probed steps"
    y = [c for c in mean.containers if isinstance(c, ErrorbarContainer)][0].lines[0].get_ydata()
    np.testing.assert_allclose(y, [alignment_mean(m, 3.0) for m in SIZES])  # the mean over epochs 1..5
    assert len([c for c in at.containers if isinstance(c, ErrorbarContainer)]) == 2
    save(fig, tmp_path, "fig5_two")


def test_fig5_without_alignment_names_the_probe(tmp_path):
    run = write_run(tmp_path / "r", probes=("train", "interpolation"), epochs=1)
    with pytest.raises(MissingData, match=r"alignment/mean_M\{m\}.*add the alignment probe"):
        draw("walk.fig5", run)


# --- Fig. 7 --------------------------------------------------------------------------------------------

def test_fig7_one_line_per_batch_size_and_their_mean_and_std(tmp_path):
    sweep = write_sweep(tmp_path / "s", batch_sizes=(16, 64, 256), epochs=2)
    fig = draw("walk.fig7", sweep)
    ax, summary = fig.axes
    lines = ax.get_lines()[:3]
    assert [l.get_label() for l in lines] == ["$B$=16", "$B$=64", "$B$=256"]
    stored = series(Runs.open(sweep).frame, "gradient_cosine/cosine", run="lr0.1_bs64_s0").dropna()
    np.testing.assert_allclose(lines[1].get_xdata(), stored["step"])
    np.testing.assert_allclose(lines[1].get_ydata(), stored["value"])
    assert ax.get_ylabel() == r"$\cos(g_{t-1}, g_t)$" and ax.get_xlabel() == "iteration"
    means = [c.lines[0].get_ydata()[0] for c in summary.containers if isinstance(c, ErrorbarContainer)]
    assert means[0] > means[1] > means[2]  # smaller for a larger batch, as the paper finds
    np.testing.assert_allclose(means[1], stored["value"].mean())
    assert [t.get_text() for t in summary.get_xticklabels()] == ["$B$=16", "$B$=64", "$B$=256"]
    save(fig, tmp_path, "fig7")
    fig = gradient_cosine(Runs.open(sweep), x="epoch", smooth=5, summary=False)
    assert len(fig.axes) == 1 and fig.axes[0].get_xlabel() == "epoch"


# --- all ------------------------------------------------------------------------------------------------

def test_missing_interpolation_names_the_probe(tmp_path):
    run = write_run(tmp_path / "r", probes=("train", "gradient_cosine"), epochs=1)
    ok, why = available(run)
    assert "walk.fig7" in ok
    for name in ("walk.fig1", "walk.fig4", "walk.table1"):
        assert "add the interpolation probe" in why[name], name
        with pytest.raises(MissingData, match="interpolation"):
            draw(name, run)


def test_the_walk_figures_are_registered():
    names = {n for n in FIGURES if n.startswith("walk.")}
    assert names == {"walk.fig1", "walk.table1", "walk.fig4", "walk.fig5", "walk.fig7"}
    assert FIGURES["walk.fig1"].fn is interpolation_window and FIGURES["walk.table1"].fn is barrier_table
