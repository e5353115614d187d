"""The ``sgdscope`` command: argument parsing only; the work lives in run/ (and viz/)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _cmd_run(args) -> int:
    from .run.config import ConfigError, load_config
    from .run.trainer import run_dir_for, train
    from .store import is_run_dir

    cfg = load_config(args.config, args.set)
    run_dir = Path(args.run_dir) if args.run_dir else run_dir_for(cfg)
    if args.resume and args.overwrite:
        raise ConfigError("give --resume or --overwrite, not both")
    if not args.resume and not args.overwrite and is_run_dir(run_dir):
        raise FileExistsError(f"{run_dir} already holds a run: add --resume to continue it or --overwrite to replace it")
    if args.resume and not is_run_dir(run_dir):
        raise FileNotFoundError(f"{run_dir}: no run to resume (run it without --resume first)")
    train(cfg, run_dir=run_dir, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet,
          trust_checkpoint=args.trust_checkpoint)
    from .store import read_status

    status = read_status(run_dir)
    print(f"{run_dir}: {status.get('state')} ({status.get('message', '')})")
    return 0 if status.get("state") == "done" else 3


def _cmd_demo(args) -> int:
    import pandas as pd

    from .run.demo import run_demo

    table, dirs = run_demo(args.out, epochs=args.epochs, progress=not args.quiet)
    print("\nsgdscope demo: MLP 64-64-10 on scikit-learn digits, SGD at two learning rates")
    for lr, d in dirs.items():
        print(f"  lr={lr:g}: {d}")
    with pd.option_context("display.width", 160, "display.max_columns", 20, "display.float_format", "{:.4g}".format):
        print(table.to_string())
    print("\nRead a run with sgdscope.load_run(PATH); list runs with `sgdscope ls", args.out + "`.")
    return 0


def _cmd_ls(args) -> int:
    import pandas as pd

    from .store import list_runs

    table = list_runs(args.runs_dir)
    if table.empty:
        print(f"no runs below {args.runs_dir}")
        return 0
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sgdscope", description="What SGD sees along its path: curvature, gradient noise, landscape.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train with probes as a TOML config says")
    run.add_argument("config", help="TOML config (see configs/)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. optimizer.lr=0.1")
    run.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run of the same name")
    run.add_argument("--trust-checkpoint", action="store_true",
                     help="with --resume: load a checkpoint that needs code to unpickle (only files you made yourself)")
    run.add_argument("--run-dir", help="where the run goes (default: OUT/NAME from the config)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(fn=_cmd_run)

    demo = sub.add_parser("demo", help="the Break-Even instruments on embedded digits, two learning rates")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(fn=_cmd_demo)

    ls = sub.add_parser("ls", help="runs below a folder: status, last step, last metrics")
    ls.add_argument("runs_dir", nargs="?", default="runs")
    ls.set_defaults(fn=_cmd_ls)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .run.config import ConfigError

    try:
        return args.fn(args)
    except (ConfigError, FileNotFoundError, FileExistsError) as err:
        print(f"sgdscope: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
