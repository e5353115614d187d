"""The training loop of ``sgdscope run``: SGD on a config, probes through a :class:`Scope`.

Everything random has its own ``torch.Generator`` (data order, augmentation, noisy optimizers,
measurements; the global RNG only feeds dropout), and a checkpoint holds all of their states,
the model, the optimizer and the position in the epoch, so ``resume=True`` after a kill gives
the same numbers as an uninterrupted run (same seed, same device). A NaN or inf training loss
stops the run, marks it ``diverged`` and keeps everything recorded.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..probes import evaluation
from ..scope import Scope
from .. import zoo
from .optimizers import build_optimizer, is_full_batch
from .probe_factory import build_probes
from .setup import build_parts

__all__ = ["train", "run_dir_for"]


def run_dir_for(cfg: dict) -> Path:
    return Path(cfg["out"]) / cfg["name"]


def _rng_state(gens: dict[str, torch.Generator]) -> dict:
    state = {k: g.get_state() for k, g in gens.items()}
    state["torch_global"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["cuda_global"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(gens: dict[str, torch.Generator], state: dict) -> None:
    for k, g in gens.items():
        g.set_state(state[k])
    torch.set_rng_state(state["torch_global"])
    if "cuda_global" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_global"])


def train(cfg: dict, *, run_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False, progress: bool = True) -> Path:
    """Train as ``cfg`` (a resolved config) says; returns the run directory."""
    run_dir = Path(run_dir) if run_dir is not None else run_dir_for(cfg)
    torch.manual_seed(cfg["seed"])  # the global stream feeds dropout only; saved in checkpoints
    parts = build_parts(cfg)
    model, loss_fn, ds = parts.model, parts.loss_fn, parts.data
    X, Y = ds.train.x, ds.train.y
    N = len(Y)
    full = is_full_batch(cfg["optimizer"]["name"])
    S = N if full else min(cfg["train"]["batch_size"], N)
    steps_per_epoch = math.ceil(N / S)
    total = cfg["train"]["epochs"] * steps_per_epoch
    if cfg["train"]["max_steps"]:
        total = min(total, cfg["train"]["max_steps"])

    eval_sets = {"train": parts.eval_set}
    if len(ds.val):
        eval_sets["val"] = (ds.val.x[: cfg["train"]["eval_examples"]], ds.val.y[: cfg["train"]["eval_examples"]])
    if len(ds.test):
        eval_sets["test"] = (ds.test.x[: cfg["train"]["eval_examples"]], ds.test.y[: cfg["train"]["eval_examples"]])
    probes = build_probes(cfg["probes"], total_steps=total, test_x=parts.test_x)
    if "eval" not in cfg["probes"]:
        probes.append(evaluation(eval_sets, every="epoch_end"))
    scope = Scope(
        model, loss_fn, parts.curvature, probes, run_dir=run_dir, eval_data=parts.eval_set, noise_data=parts.noise_source,
        train_size=N, batch_size=S, bn_mode=cfg["measure"]["bn_mode"], seed=cfg["measure"]["seed"], config=cfg,
        resume=resume, overwrite=overwrite, lanczos_tol=cfg["measure"]["lanczos_tol"], progress=progress,
    )
    store = scope.store
    device = parts.curvature[0][1].device
    gdev = device if device.type == "cuda" else "cpu"
    data_seed = cfg["train"]["data_seed"] if cfg["train"]["data_seed"] >= 0 else cfg["seed"] + 1
    gens = {
        "data": torch.Generator(device="cpu").manual_seed(data_seed),
        "augment": torch.Generator(device=gdev).manual_seed(cfg["seed"] + 2),
        "optimizer": torch.Generator(device=gdev).manual_seed(cfg["seed"] + 3),
    }
    optimizer = build_optimizer(cfg["optimizer"], model, problem=scope.problem, generator=gens["optimizer"])
    milestones = [int(m) * steps_per_epoch for m in cfg["lr_schedule"]["milestones"]]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg["lr_schedule"]["gamma"]) if milestones else None

    step, perm_state, perm = 0, None, None
    if resume:
        ckpt = store.latest_checkpoint()
        if ckpt is not None:
            ck_step, model_state, state = ckpt
            model.load_state_dict(model_state)
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            scope.load_state_dict(state["scope"])
            _set_rng_state(gens, state["rng"])
            perm_state = state["perm_state"]
            step = ck_step + 1
            store.truncate_after(ck_step)
        else:
            store.truncate_after(-1)

    def checkpoint(at_step: int, perm_state) -> None:
        store.save_checkpoint(
            at_step,
            model_state={k: v.detach() for k, v in model.state_dict().items()},
            state={
                "optimizer": optimizer.state_dict(),
                "scheduler": None if scheduler is None else scheduler.state_dict(),
                "scope": scope.state_dict(),
                "rng": _rng_state(gens),
                "perm_state": perm_state,
            },
        )

    every_ckpt = cfg["train"]["checkpoint_every"]
    log_every = cfg["train"]["log_every"]
    bar = tqdm(total=total, initial=step, desc=cfg["name"], unit="step", disable=not progress, dynamic_ncols=True)
    status, message = "done", f"{total} steps"
    try:
        while step < total:
            epoch, pos = divmod(step, steps_per_epoch)
            if pos == 0 or perm is None:  # a new epoch, or resuming inside one: the epoch's order again
                if pos == 0:
                    perm_state = gens["data"].get_state()
                gens["data"].set_state(perm_state)
                perm = torch.randperm(N, generator=gens["data"]).to(Y.device)
            idx = perm[pos * S : (pos + 1) * S]
            x, y = X[idx], Y[idx]
            if cfg["data"]["augment"]:
                x = zoo.random_crop_flip(x, gens["augment"])
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            lossf = float(loss.detach())
            if not math.isfinite(lossf):
                scope.log(step, "train", {"loss": lossf}, epoch=epoch + pos / steps_per_epoch)
                status, message = "diverged", f"training loss {lossf} at step {step}"
                break
            loss.backward()
            optimizer.step()
            epoch_end = pos == steps_per_epoch - 1 or step == total - 1
            ep = epoch + (pos + 1) / steps_per_epoch
            if step % log_every == 0 or epoch_end:
                scope.log(step, "train", {"loss": lossf, "lr": optimizer.param_groups[0]["lr"]}, epoch=ep)
            scope.after_step(step, optimizer=optimizer, batch=(x, y), loss=lossf, epoch=ep, epoch_end=epoch_end)
            if scheduler is not None:
                scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{lossf:.4f}", epoch=f"{ep:.2f}")
            if (every_ckpt and step % every_ckpt == 0) or epoch_end:
                checkpoint(step, perm_state)
            step += 1
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted at step {step}"
        raise
    except Exception as err:
        status, message = "failed", f"{type(err).__name__}: {err}"
        raise
    finally:
        bar.close()
        store.set_status(status, step=step, message=message)
        scope.close()
    return run_dir
