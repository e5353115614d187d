"""A Walk with SGD (Xing et al. 2018): barriers between consecutive iterates (§3, Table 1, Fig. 4),
the valley floor's ups and downs (Fig. 1-3), the alignment of mini-batch gradients with the Hessian
against the batch size (§4.2, Fig. 5-6) and the cosine of consecutive mini-batch gradients against
the batch size (Fig. 7).

Studies (a sweep at each scale; ``tiny``: scikit-learn's real digits, seconds per run, 2 seeds;
``cpu``: real MNIST, minutes on 2 cores; ``paper``: the paper's own settings, ``device = "cuda"``):

* ``walk_sgd``: one SGD run per seed, the interpolation probe (10 points between the parameters
  before and after the update, on the fixed evaluation set) at every step, and the alignment
  g_B^T H g_B / ||g_B||^2 for several mini-batch sizes (up to the whole training set) at epoch ends.
  tiny: MLP 64-64 on digits, lr 0.1, S = 32, 3 epochs; cpu: the paper's MLP 512-512 on 10,000 MNIST
  images, lr 0.1, S = 100, 5 epochs (the paper reads Fig. 5 at the end of epochs 5 and 10),
  interpolation on 2,000 training images; paper: VGG-11 on CIFAR-10 (45,000 training images),
  lr 0.1, S = 100, 100 epochs, interpolation on the whole training set at every step of epochs
  1, 2, 10, 25 and 100 (Fig. 1, Table 1), alignment at the end of epochs 5 and 10 with B = 100,
  1,000, 10,000, 45,000 and 50 mini-batches each (§4.2).
* ``walk_bs``: the training batch size (Fig. 7: "the same learning rate for batch size 500, 5000
  and 45000 (dataset size)"), the cosine of consecutive mini-batch gradients at every step, the
  same number of iterations at every batch size (``train.max_steps``). tiny: digits, S = 10 / 100 /
  1,300 (all), 100 steps; cpu: MLP 512-512 on 5,000 MNIST images, S = 50 / 500 / 5,000 (all),
  200 steps; paper: ResNet-56 on CIFAR-10, S = 500 / 5,000, 1,000 steps (45,000 is left out: a
  step is one forward and backward pass, about 290 GB of activations for ResNet-56 at 45,000
  images).

Rules (written before any result was seen) are in each claim; the thresholds are the constants
below.
"""
from __future__ import annotations

import numpy as np

from ..analysis import barriers_per_epoch, epoch_number, series
from .claim import Study, claim, study
from .regime import Precondition, RunRegime, each_run, trajectory
from .rules import each_run_shows, ordering, runs

__all__ = []

FLOOR, COSINE, BS = "interpolation/valley_floor", "gradient_cosine/cosine", "train.batch_size"

# --- the studies ------------------------------------------------------------------------------------------------

_TINY = {"data": {"name": "digits", "val_size": 200}, "model": {"name": "mlp", "widths": [64, 64]},
         "optimizer": {"name": "sgd", "lr": 0.1}}
_MNIST = {"data": {"name": "mnist", "val_size": 1000}, "model": {"name": "mlp", "widths": [512, 512]},
          "optimizer": {"name": "sgd", "lr": 0.1}}

# VGG-11 on CIFAR-10: 450 steps an epoch at S = 100; interpolation at every step of epochs 1, 2, 10, 25, 100
_VGG_EPOCHS, _VGG_STEPS = (1, 2, 10, 25, 100), 450
_VGG_AT = [s for e in _VGG_EPOCHS for s in range((e - 1) * _VGG_STEPS, e * _VGG_STEPS)]

SGD_STUDY = study(Study("walk_sgd", "Walk with SGD", sweeps={
    "tiny": {"config": {**_TINY, "name": "walk-sgd-tiny", "train": {"epochs": 3, "batch_size": 32},
                        "measure": {"curvature_examples": 256, "eval_examples": 0},
                        "probes": {"interpolation": {"every": 1, "num_points": 10},
                                   "alignment": {"batch_sizes": [10, 100, 1300], "num_batches": 10,
                                                 "epoch_end": True}}},
             "grid": {}, "seeds": [0, 1]},
    "cpu": {"config": {**_MNIST, "name": "walk-sgd-cpu", "data": {**_MNIST["data"], "subset": 10000},
                       "train": {"epochs": 5, "batch_size": 100},
                       "measure": {"curvature_examples": 1000, "curvature_batch": 500, "eval_examples": 2000},
                       "probes": {"interpolation": {"every": 1, "num_points": 10},
                                  "alignment": {"batch_sizes": [100, 1000, 10000], "num_batches": 20,
                                                "epoch_end": True}}},
            "grid": {}, "seeds": [0, 1, 2]},
    "paper": {"config": {"name": "walk-sgd-paper", "data": {"name": "cifar10", "val_size": 5000},
                         "model": {"name": "vgg11"}, "optimizer": {"name": "sgd", "lr": 0.1},
                         "train": {"epochs": 100, "batch_size": 100, "checkpoint_every": 450}, "device": "cuda",
                         "measure": {"curvature_fraction": 0.05, "curvature_batch": 500, "eval_examples": 0},
                         "probes": {"interpolation": {"at": _VGG_AT, "num_points": 10},
                                    "alignment": {"batch_sizes": [100, 1000, 10000, 45000], "num_batches": 50,
                                                  "at": [5 * _VGG_STEPS - 1, 10 * _VGG_STEPS - 1]}}},
              "grid": {}, "seeds": [0, 1]},
}))


def _cosine_config(base: dict, name: str, steps: int, **extra) -> dict:
    """The same number of iterations at every batch size: ``max_steps`` with epochs enough for the
    full batch (one step an epoch); the evaluation probe only at the last step."""
    return {**base, **extra, "name": name, "train": {"epochs": steps, "batch_size": 100, "max_steps": steps},
            "probes": {"gradient_cosine": {"every": 1}, "evaluation": {"at": [steps - 1]}}}


BS_STUDY = study(Study("walk_bs", "Walk with SGD", sweeps={
    "tiny": {"config": _cosine_config(_TINY, "walk-bs-tiny", 100, measure={"curvature_examples": 256}),
             "grid": {BS: [10, 100, 1300]}, "seeds": [0, 1]},
    "cpu": {"config": _cosine_config({**_MNIST, "data": {**_MNIST["data"], "subset": 5000}}, "walk-bs-cpu", 200,
                                     measure={"curvature_examples": 500}),
            "grid": {BS: [50, 500, 5000]}, "seeds": [0, 1, 2]},
    "paper": {"config": _cosine_config({"data": {"name": "cifar10", "val_size": 5000}, "model": {"name": "resnet56"},
                                        "optimizer": {"name": "sgd", "lr": 0.1}}, "walk-bs-paper", 1000,
                                       device="cuda", measure={"curvature_fraction": 0.05, "curvature_batch": 500}),
              "grid": {BS: [500, 5000]}, "seeds": [0, 1]},
}))

# --- thresholds of the rules (fixed before any result was seen) -----------------------------------------------------

_MIN_PROBED = 10  # an epoch counts when at least this many of its steps were probed
_BARRIER_SHARE = 0.05  # "about zero": at most 5% of an epoch's probed steps cross a barrier
_MIN_DIFFS = 10  # an epoch counts for the valley floor with at least this many consecutive-step pairs of changes
_TURNS = 0.2  # "ups and downs": the floor changes direction at least once every five steps
_MIN_ALIGNED, _MIN_SIZES, _SPAN = 2, 2, 10  # the alignment at two epoch ends or more, B over a factor 10 or more
_MIN_COSINES = 50  # probed cosines per run



# --- §3, Table 1, Fig. 4: barriers ----------------------------------------------------------------------------------

def _barrier_run(frame, run: str):
    """(shows, text, numbers) of one run: the share of each epoch's probed steps that crossed a barrier."""
    table = barriers_per_epoch(frame, run=run)
    counted = table[table["probed"] >= _MIN_PROBED]
    shares = (counted["crossed"] / counted["probed"]).to_numpy(dtype=float)
    epochs = counted["epoch"].tolist()
    text = ", ".join(f"epoch {e}: {int(c)}/{int(p)}" for e, c, p in
                     zip(epochs, counted["crossed"], counted["probed"])) or "no epoch probed"
    numbers = {"epochs": epochs, "crossed": counted["crossed"].astype(int).tolist(),
               "probed": counted["probed"].astype(int).tolist()}
    if not len(counted):
        return f"too few probe points (no epoch with {_MIN_PROBED} or more probed steps)", text, numbers
    low = int(np.sum(shares <= _BARRIER_SHARE))
    return low >= len(shares) / 2, text, numbers


def _every_epoch_probed(frame, scale) -> dict:
    out = {}
    for run in runs(frame):
        table = barriers_per_epoch(frame, run=run)
        short = table[table["probed"] < _MIN_PROBED]
        probed = ", ".join(f"epoch {e}: {int(p)}" for e, p in zip(table["epoch"], table["probed"])) or "no epoch probed"
        out[run] = RunRegime(bool(len(table)) and not len(short), f"probed steps per epoch: {probed}",
                             {"epochs": len(table), "short_epochs": short["epoch"].tolist()})
    return out


EPOCHS_PROBED = Precondition(
    "epochs_probed",
    "§3, Table 1: barriers counted against 'the number of iterations performed during each epoch' (the interpolation "
    "at every iteration of the counted epochs)",
    f"every epoch of the run has at least {_MIN_PROBED} probed steps of the interpolation probe",
    "probe the interpolation at every step, or train on more data per epoch", _every_epoch_probed)


@claim("walk.barriers_per_epoch", paper="Walk with SGD", where="§3, Table 1, Fig. 4",
       statement="SGD rarely crosses barriers: the number of update steps whose interpolation crosses a barrier is "
                 "negligible against the steps of an epoch, for most parts of training",
       study="walk_sgd", figure="walk.fig4",
       rule=f"for each run, per epoch with at least {_MIN_PROBED} probed steps (analysis.barriers_per_epoch: the sum of "
            f"interpolation/crossed over the epoch's probed steps): the share crossed / probed. A run shows it when at "
            f"least half of its counted epochs have a share <= {_BARRIER_SHARE:.0%}. Holds if every run shows it; does not "
            f"hold if none does; inconclusive if the runs disagree, a run has no counted epoch (too few probe points) or a "
            f"run did not finish",
       paper_numbers="Table 1 (VGG-11 and ResNet-56 on CIFAR-10, MLP on MNIST; epochs 1, 10, 25, 100 of 450 or more "
                     "iterations each): 'a negligible number of barriers are crossed for most parts of the training "
                     "compared to the number of iterations performed during each epoch' (the table's digits are garbled "
                     "in our copy of the paper; legible entries are 0 and 23); Fig. 4: VGG-11, first 40 epochs, 'the "
                     "same conclusion'", preconditions=(EPOCHS_PROBED,))
def barriers(frame, scale):
    return each_run_shows(frame, _barrier_run, what=f"at most {_BARRIER_SHARE:.0%} of the steps crossing a barrier in "
                                                    "most epochs")


# --- Fig. 1-3: the valley floor ---------------------------------------------------------------------------------------

def _direction_changes(frame, run: str) -> dict[int, list[int]]:
    """Per epoch (of step t), 1 / 0 for each step t with steps t-1, t, t+1 all probed and both changes
    f_t - f_t-1 and f_t+1 - f_t of the valley floor non-zero: whether the sign changes between them."""
    s = series(frame, FLOOR, run=run).dropna(subset=["value"]).drop_duplicates("step").sort_values("step")
    steps, values = s["step"].to_numpy(), s["value"].to_numpy(dtype=float)
    epochs = epoch_number(s["epoch"].to_numpy()) if len(s) else np.array([], dtype=int)
    per_epoch: dict[int, list[int]] = {}
    for i in range(1, len(steps) - 1):
        if steps[i] - steps[i - 1] != 1 or steps[i + 1] - steps[i] != 1:
            continue
        a, b = values[i] - values[i - 1], values[i + 1] - values[i]
        if a == 0 or b == 0:
            continue
        per_epoch.setdefault(int(epochs[i]), []).append(int(np.sign(a) != np.sign(b)))
    return dict(sorted(per_epoch.items()))


def _floor_probed(frame, run: str, scale: str):
    per_epoch = _direction_changes(frame, run)
    epochs = sorted(set(epoch_number(trajectory(frame, run, FLOOR)["epoch"].to_numpy()).tolist()))
    counts = {e: len(per_epoch.get(e, [])) for e in epochs}
    short = [e for e, n in counts.items() if n < _MIN_DIFFS]
    text = ", ".join(f"epoch {e}: {n}" for e, n in counts.items()) or "the valley floor not recorded"
    return bool(counts) and not short, f"pairs of consecutive changes per epoch: {text}", \
        {"pairs": {str(e): n for e, n in counts.items()}, "short_epochs": short}


FLOOR_PROBED = each_run(
    "floor_probed", check_run=_floor_probed,
    paper="§3, Fig. 1-3: the valley floor between each pair of consecutive iterates, 'along the path of SGD' in each "
          "plotted epoch",
    test=f"every epoch of the run has at least {_MIN_DIFFS} steps t with steps t-1, t, t+1 probed (two consecutive "
         f"changes of the valley floor)",
    remedy="probe the interpolation at every step")


def _turns(frame, run: str):
    """(shows, text, numbers) of one run: per epoch, the share of direction changes of the valley floor
    between consecutive steps (see the claim's rule)."""
    counted = {e: v for e, v in _direction_changes(frame, run).items() if len(v) >= _MIN_DIFFS}
    shares = {e: float(np.mean(v)) for e, v in counted.items()}
    text = ", ".join(f"epoch {e}: {shares[e]:.2f} of {len(v)}" for e, v in counted.items()) or "no epoch counted"
    numbers = {"turns": {str(e): shares[e] for e in shares}, "pairs": {str(e): len(v) for e, v in counted.items()}}
    if not counted:
        return f"no epoch with {_MIN_DIFFS} or more pairs of consecutive changes", text, numbers
    return all(v >= _TURNS for v in shares.values()), text, numbers


@claim("walk.valley_floor", paper="Walk with SGD", where="§3, Fig. 1-3 (dashed line)",
       statement="the valley floor (the minimum of the loss interpolated between consecutive iterates) has ups and downs "
                 "along the path of SGD, in every epoch: SGD moves over barriers rather than crossing them",
       study="walk_sgd", figure="walk.fig1",
       rule=f"for each run, with f_t = interpolation/valley_floor of the update at step t: for every step t with steps "
            f"t-1, t, t+1 all probed and both changes f_t - f_t-1 and f_t+1 - f_t non-zero, a direction change is a sign "
            f"change between them; per epoch (of step t) with at least {_MIN_DIFFS} such pairs, the share of direction "
            f"changes. A run shows ups and downs when the share is >= {_TURNS} in every counted epoch (a monotone floor "
            f"gives 0, independent changes about 2/3). Holds if every run shows it; does not hold if none does; "
            f"inconclusive if the runs disagree or a run did not finish",
       paper_numbers="no number in the text; Fig. 1 (VGG-11, CIFAR-10, epochs 1, 2, 25, 100): 'this minimum has ups and "
                     "downs along the path of SGD for all our interpolation plots' (also ResNet-56, Fig. 2; MLP on MNIST, "
                     "Fig. 3)", preconditions=(FLOOR_PROBED,))
def valley_floor(frame, scale):
    return each_run_shows(frame, _turns, what=f"the valley floor changing direction in at least {_TURNS:.0%} of the "
                                              "steps of every epoch")


# --- §4.2, Fig. 5-6: alignment of mini-batch gradients with the Hessian ----------------------------------------------

def _alignment_table(frame, run: str):
    """The run's mean alignment per probed step (rows) and mini-batch size (columns), steps with every size."""
    rows = frame[(frame["run"] == run) & (frame["type"] == "alignment") & frame["name"].str.startswith("mean_M")]
    table = rows.assign(M=rows["name"].str[len("mean_M"):].astype(int)).pivot_table(
        index="step", columns="M", values="value", aggfunc="last").sort_index(axis=1)
    return [int(m) for m in table.columns], table.dropna()


def _alignment_probed(frame, run: str, scale: str):
    sizes, table = _alignment_table(frame, run)
    epochs = frame.loc[(frame["run"] == run) & frame["step"].isin(table.index), "epoch"].round(3).unique().tolist()
    inside = len(sizes) >= _MIN_SIZES and len(table) >= _MIN_ALIGNED and (not sizes or sizes[-1] >= _SPAN * sizes[0])
    return inside, (f"{len(table)} probed steps with every batch size (epochs {', '.join(f'{e:g}' for e in epochs)}); "
                    f"batch sizes {', '.join(map(str, sizes)) or 'none'}"), {"steps": len(table), "batch_sizes": sizes}


ALIGNMENT_PROBED = each_run(
    "alignment_probed", check_run=_alignment_probed,
    paper="§4.2: the alignment read 'at the end of epochs 5 and 10' for B = 100, 1000, 10000 and 45000 (the dataset)",
    test=f"the alignment probe ran at {_MIN_ALIGNED} or more epoch ends with at least {_MIN_SIZES} mini-batch sizes, the "
         f"largest at least {_SPAN} times the smallest",
    remedy="probe the alignment at more epoch ends or with a wider range of batch sizes")


def _alignment_run(frame, run: str):
    """(shows, text, numbers) of one run: at each probed step, is the mean alignment strictly increasing in B?"""
    sizes, table = _alignment_table(frame, run)
    numbers = {"batch_sizes": sizes, "steps": [int(s) for s in table.index],
               "means": [[float(v) for v in row] for row in table.to_numpy()]}
    text = "; ".join(f"step {s}: " + ", ".join(f"B={m}: {v:.3g}" for m, v in zip(sizes, row))
                     for s, row in zip(table.index, table.to_numpy())) or "no probed step"
    if len(sizes) < 2 or not len(table):
        return f"{len(table)} probed steps with every batch size; {len(sizes)} batch sizes", text, numbers
    rising = [bool(np.all(np.diff(row) > 0)) for row in table.to_numpy()]
    numbers["rising"] = rising
    if all(rising):
        return True, text, numbers
    if not any(rising):
        return False, text, numbers
    return f"steps disagree: the alignment rises with B at {sum(rising)} of {len(rising)} probed steps", text, numbers


@claim("walk.alignment_batch_size", paper="Walk with SGD", where="§4.2, Fig. 5-6",
       statement="the alignment g_B^T H g_B / ||g_B||^2 of the mini-batch gradient with the Hessian is larger for a "
                 "larger mini-batch size B",
       study="walk_sgd", figure="walk.fig5",
       rule="for each run and each step the alignment probe ran (epoch ends; tiny and cpu: every epoch, paper: epochs 5 "
            "and 10), the means alignment/mean_M{m} over the mini-batches of each size m, sorted by m: strictly increasing "
            "in m. A run shows it when this is so at every probed step, does not when at none (some but not all: the run "
            "is inconclusive, steps disagree). Holds if every run shows it; does not hold if none does; inconclusive if "
            "runs disagree, a run has fewer than two batch sizes or no probed step, or did not finish",
       paper_numbers="no number in the text; Fig. 5 (VGG-11, CIFAR-10) and Fig. 6 (ResNet-56, CIFAR-100), end of epochs 5 "
                     "and 10, B = 100, 1000, 10000, 45000, 50 mini-batches each: 'the alignment between mini-batch "
                     "gradient and hessian is larger for larger mini-batch size'", preconditions=(ALIGNMENT_PROBED,))
def alignment_batch_size(frame, scale):
    return each_run_shows(frame, _alignment_run, what="the mean alignment rising strictly with the batch size at every "
                                                      "probed step")


# --- Fig. 7: cosine of consecutive mini-batch gradients -----------------------------------------------------------------

def _last_step(frame, run: str) -> int:
    traj = trajectory(frame, run, COSINE)
    return int(traj["step"].max()) if len(traj) else -1


def _iterations(frame, run: str, scale: str):
    n, last = len(trajectory(frame, run, COSINE)), _last_step(frame, run)
    ends = sorted({_last_step(frame, r) for r in runs(frame)})
    other = "" if len(ends) == 1 else f" (the runs end at steps {ends})"
    return bool(len(ends) == 1 and n >= _MIN_COSINES), f"{n} probed cosines to step {last}{other}", \
        {"n": n, "last_step": last}


SAME_ITERATIONS = each_run(
    "same_iterations", check_run=_iterations,
    paper="§4.2, Fig. 7: the cosine against the iterations of training, 'the same learning rate for batch size 500, 5000 "
          "and 45000' (every batch size over the same iterations)",
    test=f"every run has its cosine probed at {_MIN_COSINES} or more steps and ends at the same step as the others",
    remedy="train every batch size for the same train.max_steps and probe the cosine at every step")

claim("walk.cosine_batch_size", paper="Walk with SGD", where="§4.2, Fig. 7",
      statement="the cosine of consecutive mini-batch gradients cos(g_t-1, g_t) remains smaller for larger batch sizes "
                "(SGD oscillates more)",
      study="walk_bs", figure="walk.fig7", preconditions=(SAME_ITERATIONS,),
      rule=ordering(COSINE, BS, falls=True, what="mean cos(g_t-1, g_t)", stat="mean"),
      paper_numbers="no number in the text; Fig. 7 (ResNet-56 on CIFAR-10, WResNet on CIFAR-100; batch sizes 500, 5000 "
                    "and 45000 at the same learning rate): 'the cosine ... remains smaller for larger batch sizes'")
