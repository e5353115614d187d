"""sgdscope inside a DDP training loop: every rank measures, rank 0 records.

    torchrun --nproc_per_node 2 examples/ddp_scope.py                   # CPU processes, gloo
    torchrun --nproc_per_node 2 examples/ddp_scope.py --backend nccl    # one GPU per process (auto when CUDA is there)
    torchrun --nproc_per_node 2 examples/ddp_scope.py --resume          # continue from the run's last checkpoint

Trains a small MLP on scikit-learn's digits with DistributedDataParallel. Each rank holds a
contiguous shard of the training set, of the curvature subset and of the noise pool (the union in
rank order is the whole set) and takes its slice of every global batch; the Scope is built with
``distributed=True`` on the module DDP wraps, every rank calls ``after_step``, and the
measurements equal one process's on the union. Only rank 0 opens the run folder and saves
checkpoints; on ``--resume`` every rank reads the last checkpoint and rank 0 drops the rows
recorded after it, so the run ends with the metrics of an uninterrupted one.
"""
import argparse
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import sgdscope


def shard(x, y, rank, world):
    """Rank ``rank``'s contiguous part of (x, y): the shards in rank order are the whole set."""
    lo, hi = len(y) * rank // world, len(y) * (rank + 1) // world
    return x[lo:hi], y[lo:hi]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=["gloo", "nccl"], default=None, help="default: nccl when CUDA is available, else gloo")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--every", type=int, default=20, help="probe every this many steps")
    ap.add_argument("--batch-size", type=int, default=32, help="the global batch, shared out over the ranks")
    ap.add_argument("--out", default="runs/ddp-scope")
    ap.add_argument("--checkpoint-every", type=int, default=None, help="default: --every")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    ap.add_argument("--stop-after", type=int, default=None, help="leave after this step without closing the run (as a killed job)")
    args = ap.parse_args()

    backend = args.backend or ("nccl" if torch.cuda.is_available() else "gloo")
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {world} processes")

    data = sgdscope.zoo.load_dataset("digits", seed=0)
    x, y = data.train.x.flatten(1), data.train.y
    torch.manual_seed(0)  # the same initial model on every rank (DDP would broadcast rank 0's anyway)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

    writer, start, state = None, 0, None
    if rank == 0:  # the only rank that writes: the other ranks create nothing
        writer = sgdscope.RunWriter(args.out, resume=args.resume, config={"example": "ddp_scope", "world": world})
    if args.resume:
        steps = sgdscope.store.checkpoint_steps(args.out)
        if not steps:
            raise SystemExit(f"{args.out}: no checkpoint to resume from")
        model_state, state = sgdscope.store.load_checkpoint(args.out, steps[-1])  # every rank reads rank 0's checkpoint
        model.load_state_dict(model_state)
        optimizer.load_state_dict(state["optimizer"])
        start = steps[-1] + 1
        if writer is not None:
            writer.truncate_after(steps[-1])

    probes = sgdscope.probes.break_even(every=args.every, k=3, num_batches=10) + [sgdscope.probes.interpolation(5, every=args.every)]
    scope = sgdscope.Scope(
        model, loss_fn, curvature_data=shard(x[:256], y[:256], rank, world), probes=probes, sink=writer,
        noise_data=shard(x, y, rank, world), train_size=len(y), batch_size=args.batch_size, bn_mode="eval", distributed=True,
    )
    if state is not None:
        scope.load_state_dict(state["scope"])

    per_epoch, local = len(y) // args.batch_size, args.batch_size // world
    for step in range(start, args.steps):
        epoch, i = divmod(step, per_epoch)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(epoch))  # the same on every rank
        batch = order[i * args.batch_size + rank * local : i * args.batch_size + (rank + 1) * local]
        xb, yb = x[batch].to(device), y[batch].to(device)
        optimizer.zero_grad()
        loss = loss_fn(ddp(xb), yb)
        loss.backward()
        optimizer.step()
        scope.after_step(step, optimizer=optimizer, batch=(xb, yb), loss=loss.detach(), epoch=epoch, epoch_end=i == per_epoch - 1)
        if writer is not None and (step + 1) % (args.checkpoint_every or args.every) == 0:
            writer.save_checkpoint(step, model_state=model.state_dict(),
                                   state={"optimizer": optimizer.state_dict(), "scope": scope.state_dict()})
        if step == args.stop_after:
            dist.barrier()  # no rank leaves while another still talks to it
            dist.destroy_process_group()
            sys.exit(0)

    scope.close()
    if writer is not None:
        writer.set_status("done")
        writer.close()
        df = sgdscope.load_run(args.out)
        top = df[(df.type == "top_eigenvalues") & (df.name == "lambda_1")]
        noise = df[(df.type == "gradient_noise") & (df.name == "lambda_1")]
        print(f"{len(df)} rows in {args.out}, measured by {world} processes ({backend})")
        print("lambda_H^1 along training:", top.value.round(3).tolist())
        print("lambda_K^1 along training:", noise.value.round(3).tolist())
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
