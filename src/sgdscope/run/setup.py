"""From a resolved config to the parts of a run: data, model, loss, fixed measurement and evaluation sets."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import zoo

__all__ = ["Parts", "build_parts"]


@dataclass
class Parts:
    data: "zoo.Dataset"
    model: torch.nn.Module
    loss_fn: torch.nn.Module
    curvature: list  # fixed (x, y) batches
    eval_set: tuple  # the landscape probes' fixed set
    noise_source: tuple  # the pool mini-batches for K are drawn from
    test_x: torch.Tensor  # inputs of the predictions probe
    evaluation: dict  # {"train": (X, Y), "val": ..., "test": ...}: the fixed sets of the evaluation probe


def _prefix(split, n: int, perm: torch.Tensor):
    idx = perm[: n if n > 0 else len(perm)]
    return split.x[idx], split.y[idx]


def build_parts(cfg: dict) -> Parts:
    d, meas = cfg["data"], cfg["measure"]
    device, dtype = torch.device(cfg["device"]), getattr(torch, cfg["dtype"])
    ds = zoo.load_dataset(
        d["name"], d["root"] or None, val_size=d["val_size"], subset=d["subset"] or None, seed=cfg["seed"], **d["options"]
    )
    if d["grey_resize"]:
        ds = zoo.grey_resize(ds, d["grey_resize"])
    if d["normalize"] and ds.train.x.is_floating_point():
        ds = zoo.standardize(ds)
    if d["shuffled_labels"]:
        ds = zoo.shuffle_train_labels(ds, d["shuffled_labels"], seed=cfg["seed"])
    ds = ds.to(device, dtype)
    model_kwargs = {k: v for k, v in cfg["model"].items() if k != "name"}
    model = zoo.build_model(
        cfg["model"]["name"], input_shape=ds.input_shape, num_classes=ds.num_classes, seed=cfg["seed"],
        device=device, dtype=dtype, **model_kwargs,
    )
    loss_fn = zoo.build_loss(cfg["loss"]["name"], **{k: v for k, v in cfg["loss"].items() if k != "name"})
    N = len(ds.train)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(meas["seed"] + 7919)).to(device)
    n_curv = meas["curvature_examples"] or max(1, round(meas["curvature_fraction"] * N))
    cx, cy = _prefix(ds.train, min(n_curv, N), perm)
    b = meas["curvature_batch"]
    curvature = [(cx[i : i + b], cy[i : i + b]) for i in range(0, len(cy), b)]
    eval_set = _prefix(ds.train, min(meas["eval_examples"], N) if meas["eval_examples"] else 0, perm)
    noise_source = _prefix(ds.train, min(meas["noise_examples"], N) if meas["noise_examples"] else 0, perm)
    test_x = ds.test.x[: meas["test_examples"]] if len(ds.test) else ds.train.x[: meas["test_examples"]]
    n_eval = cfg["train"]["eval_examples"]
    evaluation = {"train": eval_set}
    for key, split in (("val", ds.val), ("test", ds.test)):
        if len(split):
            evaluation[key] = (split.x[: n_eval or None], split.y[: n_eval or None])
    return Parts(ds, model, loss_fn, curvature, eval_set, noise_source, test_x, evaluation)
