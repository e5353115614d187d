"""From a resolved config to the parts of a run: data, model, loss, fixed measurement sets."""
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
    eval_set: tuple
    noise_source: tuple
    test_x: torch.Tensor


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
    return Parts(ds, model, loss_fn, curvature, eval_set, noise_source, test_x)
