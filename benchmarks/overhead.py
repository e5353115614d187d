"""Training overhead of the Break-Even instrument set (issue: trajectory runner).

MLP 300-100 (Break-Even App. D) on real Fashion-MNIST, SGD, batch 64, one epoch: plain training
against the same training with ``sgdscope.probes.break_even(every=100)`` through a ``Scope``
(the curvature subset and the noise source as configured below), measured side by side in one
run. Prints the overhead and each probe's share, writes JSON. Target: <= 30% overhead.

    python benchmarks/overhead.py [--curvature 2750] [--steps 0] [--device cuda]
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import sgdscope
from _common import print_targets, require_data, sync, table, target, write_json


def train_epoch(model, x, y, batch, seed, scope=None, max_steps=0):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g).to(y.device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    steps = len(y) // batch if not max_steps else max_steps
    sync(x.device)
    t0 = time.perf_counter()
    for step in range(steps):
        idx = perm[step * batch : (step + 1) * batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        if scope is not None:
            scope.after_step(step, optimizer=opt, batch=(xb, yb), loss=loss.detach())
    sync(x.device)
    return time.perf_counter() - t0, steps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curvature", type=int, default=2750, help="curvature subset (default 5%% of 55,000)")
    parser.add_argument("--noise-source", type=int, default=0, help="examples K's mini-batches come from (0: all training)")
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--steps", type=int, default=0, help="stop the epoch after this many steps (0: whole epoch)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    ds = sgdscope.zoo.load_dataset("fashion_mnist", require_data("fashion-mnist"), val_size=5000, seed=0).to(device)
    x, y = ds.train.x, ds.train.y
    build = lambda: sgdscope.zoo.build_model("mlp", input_shape=(1, 28, 28), num_classes=10, widths=(300, 100), seed=0, device=device)

    plain, with_scope, shares, matvecs = [], [], {}, []
    for r in range(args.repeats):  # interleaved, so both see the same machine
        t, steps = train_epoch(build(), x, y, 64, seed=r, max_steps=args.steps)
        plain.append(t)
        model = build()
        sub = slice(0, args.curvature)
        scope = sgdscope.Scope(model, nn.CrossEntropyLoss(), [(x[sub], y[sub])], sgdscope.probes.break_even(every=args.every),
                               sink=sgdscope.MemorySink(), noise_data=(x, y) if not args.noise_source else (x[: args.noise_source], y[: args.noise_source]),
                               train_size=len(y), batch_size=64, seed=r)
        t, _ = train_epoch(model, x, y, 64, seed=r, scope=scope, max_steps=args.steps)
        with_scope.append(t)
        for step, _, name, value_name, value in scope.sink.rows:
            if value_name == "seconds":
                shares[name] = shares.get(name, 0.0) + value / args.repeats
            if name == "top_eigenvalues" and value_name == "matvecs":
                matvecs.append(value)
    t_plain, t_scope = min(plain), min(with_scope)
    overhead = t_scope / t_plain - 1
    rows = [{"probe": k, "seconds_per_epoch": v, "share_of_plain_epoch": v / t_plain} for k, v in sorted(shares.items(), key=lambda kv: -kv[1])]
    print(f"MLP 300-100 on Fashion-MNIST, {steps} steps of batch 64, Break-Even probes every {args.every} steps, "
          f"curvature subset {args.curvature}, device {device}")
    print(table([{"run": "plain", "seconds": t_plain}, {"run": "with probes", "seconds": t_scope, "overhead": f"{100 * overhead:.1f}%"}],
                ["run", "seconds", "overhead"]))
    print()
    print(table(rows, ["probe", "seconds_per_epoch", "share_of_plain_epoch"]))
    print(f"\nLanczos (lambda_H^1, warm-started): {sum(matvecs) / len(matvecs):.1f} Hessian-vector products per probe on average "
          f"(first {matvecs[0]:.0f}, then {matvecs[1 : len(matvecs) // args.repeats]})")
    targets = [target("overhead_le_30pct", overhead, 0.30, overhead <= 0.30,
                      f"training with the Break-Even probes every {args.every} steps <= 30% slower than plain training "
                      f"(curvature subset {args.curvature}, {steps} steps, best of {args.repeats}): {100 * overhead:.0f}%")]
    print_targets(targets)
    path = write_json("overhead", {"args": vars(args), "steps": steps, "plain_s": plain, "scope_s": with_scope, "overhead": overhead,
                                   "probes": rows, "lanczos_matvecs": matvecs, "targets": {t["name"]: t for t in targets}})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
