"""The Break-Even Point (Jastrzebski et al. 2020): Conjectures 1 and 2 over learning rates.

Scales: ``tiny``: MLP 64-64 on scikit-learn's real digits, 3 epochs, lr 0.02 / 0.2, 2 seeds
(seconds); ``cpu``: the paper's MLP 300-100 (App. D) on real Fashion-MNIST, lr 0.1 / 0.01, 2 seeds,
2 epochs, K from 25 mini-batches of the training batch size (§4.1: "the same batch size as the one
used to train the model"); ``paper``: SimpleCNN on CIFAR-10, lr 0.1 / 0.01 / 0.001, 3 seeds.

The maxima are taken after the first probed steps (``after_step``): the paper's statements concern
the trajectory from the break-even point on, and at initialisation a network's K and H are not yet
shaped by the learning rate.
"""
from __future__ import annotations

from ..analysis import compare
from .claim import Study, claim, study
from .rules import ordered

__all__ = []

_PROBES = {
    "top_eigenvalues": {"k": 1, "every": 10},
    "gradient_noise": {"num_batches": 25, "every": 10},
    "loss_change": {"every": 10},
}

LR = study(Study("be_lr", "Break-Even", sweeps={
    "tiny": {"config": {"name": "be-lr-tiny", "data": {"name": "digits", "val_size": 200},
                        "model": {"name": "mlp", "widths": [64, 64]}, "optimizer": {"name": "sgd", "lr": 0.02},
                        "train": {"epochs": 3, "batch_size": 32}, "measure": {"curvature_examples": 256},
                        "probes": {k: {**v, "every": 5} for k, v in _PROBES.items()}},
             "grid": {"optimizer.lr": [0.02, 0.2]}, "seeds": [0, 1]},
    "cpu": {"config": {"name": "be-lr-cpu", "data": {"name": "fashion_mnist", "val_size": 5000, "normalize": False},
                       "model": {"name": "mlp", "widths": [300, 100]}, "optimizer": {"name": "sgd", "lr": 0.01},
                       "train": {"epochs": 2, "batch_size": 128},
                       "measure": {"curvature_examples": 2560, "curvature_batch": 512},
                       "probes": {k: {**v, "every": 25} for k, v in _PROBES.items()}},
            "grid": {"optimizer.lr": [0.01, 0.1]}, "seeds": [0, 1]},
    "paper": {"config": {"name": "be-lr-paper", "data": {"name": "cifar10", "val_size": 5000, "augment": True},
                         "model": {"name": "simplecnn"}, "optimizer": {"name": "sgd", "lr": 0.01},
                         "train": {"epochs": 200, "batch_size": 128}, "device": "cuda",
                         "measure": {"curvature_examples": 2500, "curvature_batch": 500},
                         "probes": {k: {**v, "every": 100} for k, v in _PROBES.items()}},
              "grid": {"optimizer.lr": [0.001, 0.01, 0.1]}, "seeds": [0, 1, 2]},
}))

_AFTER = {"tiny": 5, "cpu": 25, "paper": 100}  # the first probed step is left out of the maxima


@claim("break_even.conjecture1_lambda_k", paper="Break-Even", where="Conjecture 1, Fig. 4",
       statement="the maximum of lambda_K^1 along the trajectory is smaller for a larger learning rate",
       study="be_lr", figure="break_even.fig4",
       rule="max of gradient_noise/lambda_1 after the first probed step falls strictly as optimizer.lr grows, for every "
            "seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN: max lambda_K^1 = 0.68 (lr 0.1) vs 3.30 (lr 0.01)")
def conjecture1_lambda_k(frame, scale):
    table = compare(frame, "gradient_noise/lambda_1", stat="max", after_step=_AFTER[scale], by="optimizer.lr")
    return ordered(table, "optimizer.lr", falls=True, what="max lambda_K^1")


@claim("break_even.conjecture1_lambda_h", paper="Break-Even", where="Conjecture 1, Fig. 5",
       statement="the maximum of lambda_H^1 along the trajectory is smaller for a larger learning rate",
       study="be_lr", figure="break_even.fig4",
       rule="max of top_eigenvalues/lambda_1 after the first probed step falls strictly as optimizer.lr grows, for every "
            "seed (all seeds the other way: does not hold; otherwise inconclusive)",
       paper_numbers="SimpleCNN: max lambda_H^1 = 26.27 (lr 0.1) vs 211.17 (lr 0.01)")
def conjecture1_lambda_h(frame, scale):
    table = compare(frame, "top_eigenvalues/lambda_1", stat="max", after_step=_AFTER[scale], by="optimizer.lr")
    return ordered(table, "optimizer.lr", falls=True, what="max lambda_H^1")


@claim("break_even.conjecture2_ratio", paper="Break-Even", where="Conjecture 2, Fig. 4",
       statement="the maximum of lambda_K^*/lambda_K^1 along the trajectory is larger for a larger learning rate",
       study="be_lr", figure="break_even.fig4",
       rule="max of gradient_noise/ratio after the first probed step rises strictly as optimizer.lr grows, for every seed "
            "(the early transient at initialisation excluded; all seeds the other way: does not hold)",
       paper_numbers="SimpleCNN: max lambda_K^*/lambda_K^1 = 0.37 (lr 0.1) vs 0.24 (lr 0.01)")
def conjecture2_ratio(frame, scale):
    table = compare(frame, "gradient_noise/ratio", stat="max", after_step=_AFTER[scale], by="optimizer.lr")
    return ordered(table, "optimizer.lr", falls=False, what="max lambda_K^*/lambda_K^1")
