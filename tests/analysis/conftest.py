"""A sweep folder with known synthetic trajectories: 2 learning rates x 2 seeds, 10 steps each.

Steps 0..9, 5 steps per epoch, recorded epoch = (step + 1) / 5 (the trainer's convention: the
epochs completed after the step), so steps 0-4 are epoch 1 and step 4 has epoch exactly 1.0.
Probe labels differ from their types where it matters ("noise" is gradient_noise, "hessian" is
top_eigenvalues), so the tests address metrics by type and by label. Expected numbers in the
tests are worked out by hand from the tables below.
"""
import math

import pytest

import sgdscope
from sgdscope.store import RunWriter

STEPS_PER_EPOCH = 5
PROBES = {"noise": "gradient_noise", "hessian": "top_eigenvalues", "evaluation": "evaluation",
          "loss_change": "loss_change", "interpolation": "interpolation"}
_ = None  # not recorded at this step

# run label -> (lr, seed)
RUNS = {"lr0.1_s0": (0.1, 0), "lr0.1_s1": (0.1, 1), "lr0.01_s0": (0.01, 0), "lr0.01_s1": (0.01, 1)}

TABLES = {
    "lr0.1_s0": {
        "noise/lambda_1": [1, 3, 6, 8, 5, 4, 3, 2, 2, 1],
        "hessian/lambda_1": [2, _, 5, _, 4, _, 3, _, 3, _],
        "evaluation/train_accuracy": [0.1, 0.2, 0.3, 0.45, 0.55, 0.6, 0.7, 0.75, 0.8, 0.85],
        "loss_change/delta_loss": [0.5, 0.4, 0.3, 0.2, -0.1, 0.1, -0.2, -0.1, 0.05, -0.05],
        "interpolation/crossed": [0, 1, 0, 0, 1, _, 0, _, 0, 1],
        "interpolation/barriers_epoch": [_, _, _, _, 2, _, _, _, _, 1],
        "interpolation/probed_epoch": [_, _, _, _, 5, _, _, _, _, 3],
    },
    "lr0.1_s1": {
        "noise/lambda_1": [2, 4, 7, 10, 9, 6, 4, 3, 2, 2],
        "evaluation/train_accuracy": [0.1, 0.25, 0.35, 0.5, 0.6, 0.65, 0.7, 0.8, 0.85, 0.9],
        "loss_change/delta_loss": [0.5, 0.4, -0.1, 0.2, 0.1, -0.1, -0.1, 0.1, -0.2, 0.1],
        "interpolation/crossed": [0] * 10,
    },
    "lr0.01_s0": {
        "noise/lambda_1": [1, 5, 9, 14, 20, 16, 12, 9, 7, 5],
        "evaluation/train_accuracy": [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65],
        "loss_change/delta_loss": [0.3] * 10,
    },
    "lr0.01_s1": {  # never reaches 60% training accuracy
        "noise/lambda_1": [2, 6, 11, 15, 18, 19, 13, 10, 8, 6],
        "evaluation/train_accuracy": [0.1, 0.15, 0.2, 0.3, 0.35, 0.45, 0.5, 0.55, 0.58, 0.59],
        "loss_change/delta_loss": [0.3] * 10,
    },
}


def _write_run(path, config, table, *, epochs=True):
    """Write one run: ``table`` maps "label/name" to a value per step (None: not recorded)."""
    with RunWriter(path, config=config) as writer:
        labels = {key.split("/")[0] for key in table}
        writer.declare({label: PROBES.get(label, label) for label in labels})
        steps = max(len(values) for values in table.values())
        for step in range(steps):
            epoch = (step + 1) / STEPS_PER_EPOCH if epochs else math.nan
            for key, values in table.items():
                if step < len(values) and values[step] is not None:
                    label, name = key.split("/")
                    writer.log(step, epoch, label, {name: float(values[step])})
        writer.set_status("done")
    return path


@pytest.fixture
def write_run():
    """``write_run(path, config, table, *, epochs=True)``: a run of the fixture's format."""
    return _write_run


@pytest.fixture
def sweep_root(tmp_path):
    root = tmp_path / "sweep"
    for run, (lr, seed) in RUNS.items():
        config = {"optimizer": {"name": "sgd", "lr": lr}, "seed": seed, "name": run,
                  "out": str(root / run)}
        _write_run(root / run, config, TABLES[run])
    return root


@pytest.fixture
def sweep(sweep_root):
    return sgdscope.load_sweep(sweep_root)


@pytest.fixture
def run_a(sweep_root):
    """One run's frame (load_run): lr 0.1, seed 0."""
    return sgdscope.load_run(sweep_root / "lr0.1_s0")
