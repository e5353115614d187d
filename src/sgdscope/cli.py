"""The ``sgdscope`` command: argument parsing only; the work lives in run/, sweep/, store/ and analysis/."""
from __future__ import annotations

import argparse
import errno
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


def _regime_line(row) -> str:
    """"inside (break_even_reached, maximum_inside)" or "OUTSIDE: break_even_reached (2 of 4 runs)"."""
    regime = row.get("regime") or []
    if not regime:
        return "no precondition stated"
    bad = [f"{r['key']} ({sum(not v['inside'] for v in r['runs'].values())} of {len(r['runs'])} runs)"
           for r in regime if not r["inside"]]
    return "OUTSIDE: " + ", ".join(bad) if bad else "inside (" + ", ".join(r["key"] for r in regime) + ")"


def _verdict_table(rows) -> None:
    from .reproduce import summary

    for r in rows:
        print(f"{r['claim']}: {r['verdict'].upper()}")
        print(f"    {'regime:':7s} {_regime_line(r)}")
        for p in r.get("regime") or []:
            for run, v in p["runs"].items():
                print(f"        {p['key']} {'ok ' if v['inside'] else 'NOT'} {run}: {v['measured']}")
        for label, key in (("ours", "ours"), ("paper", "paper"), ("why", "reason")):
            if r.get(key):
                print(f"    {label + ':':7s} {r[key]}")
    counts = summary(rows)
    print(f"\n{counts['claims']} claims: {counts['holds']} hold, {counts['does not hold']} do not hold, "
          f"{counts['out of regime']} out of regime, {counts['inconclusive']} inconclusive")


def _cmd_demo(args) -> int:
    from .reproduce import run_demo

    rows = run_demo(args.out, workers=args.workers, quiet=args.quiet)
    print("\nsgdscope demo: a few of the papers' claims at the tiny scale (MLP on scikit-learn digits, 2 learning rates "
          "x 2 seeds), each with its regime check and judged by the rules of `sgdscope reproduce`, as they came out:")
    _verdict_table(rows)
    studies = dict.fromkeys(r["study"] for r in rows)
    print(f"\nReports: {', '.join(str(Path(args.out) / 'tiny' / s / 'report.html') for s in studies)}. "
          "More claims on real data: `sgdscope reproduce --scale cpu` (minutes per paper); the papers' own settings: "
          "`--scale paper` (GPU).")
    return 0


def _print_table(table) -> None:
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))


def _metrics_arg(text: str | None):
    from .store.reader import KEY_METRICS

    return KEY_METRICS if not text else [m.strip() for m in text.split(",") if m.strip()]


def _cmd_ls(args) -> int:
    from .store import is_sweep_dir, list_runs, sweep_table

    metrics = _metrics_arg(args.metrics)
    given = args.metrics is not None  # metrics asked for by name must exist
    if is_sweep_dir(args.runs_dir):
        table = sweep_table(args.runs_dir, metrics=metrics, require=given)
    else:
        table = list_runs(args.runs_dir, metrics=metrics, require=given).drop(columns=["path", "updated"])
    if table.empty:
        print(f"no runs below {args.runs_dir}")
        return 0
    _print_table(table)
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import parse_grid, parse_seeds, run_sweep

    rows = run_sweep(args.config, grid=parse_grid(args.grid), seeds=parse_seeds(args.seeds), out=args.out,
                     executor=args.executor, workers=args.workers, threads=args.threads, address=args.address,
                     retry_failed=args.retry_failed, extend=args.extend, quiet=args.quiet)
    import pandas as pd

    table = pd.DataFrame(rows).drop(columns=["path"])
    _print_table(table)
    folder = str(pd.DataFrame(rows)["path"].iloc[0]).rsplit("/runs/", 1)[0] if rows else args.out
    print(f"\nsweep folder: {folder}  (sgdscope ls {folder}; sgdscope compare {folder} --metric TYPE/NAME)")
    return 0 if all(r["state"] in ("done", "diverged") for r in rows) else 3


def _cmd_compare(args) -> int:
    from .analysis import compare, seed_columns
    from .store import load_sweep_folder

    table = compare(load_sweep_folder(args.sweep), args.metric, stat=args.stat, after_step=args.after_step,
                    after_epoch=args.after_epoch, until_accuracy=args.until_accuracy, by=args.by)
    window = (f", after step {args.after_step}" if args.after_step is not None else
              f", after epoch {args.after_epoch}" if args.after_epoch is not None else
              f", until train accuracy {args.until_accuracy}" if args.until_accuracy is not None else "")
    print(f"{args.stat} of {args.metric}{window}: mean and std over seeds, each seed's value")
    _print_table(seed_columns(table))
    return 0


def _cmd_plot(args) -> int:
    from .run.config import ConfigError, parse_value
    from .viz import FIGURES, available, draw

    if args.list or not args.figure:
        ok, missing = available(args.source)
        for name in sorted(FIGURES):
            spec = FIGURES[name]
            mark = "yes" if name in ok else "no "
            print(f"{mark}  {name:32s} {spec.paper}: {spec.title}" + ("" if name in ok else f"\n       ({missing[name]})"))
        return 0
    options = {}
    for item in args.opt:
        if "=" not in item:
            raise ConfigError(f"--opt expects KEY=VALUE, got {item!r}")
        key, text = item.split("=", 1)
        options[key.strip()] = parse_value(text.strip())
    out = Path(args.output or f"{args.figure}.png")
    draw(args.figure, args.source, **options).savefig(out)
    print(out)
    return 0


def _cmd_report(args) -> int:
    from .viz import build_report

    print(build_report(args.source, args.output))
    return 0


def _cmd_reproduce(args) -> int:
    from .reproduce import STUDIES, reproduce, select

    if args.list:
        for c in select(args.what):
            study = STUDIES[c.study]
            scales = ", ".join(study.sweeps) if study.sweeps else "recorded"
            print(f"{c.key}\n    {c.paper}, {c.where}: {c.statement}\n    rule: {c.rule}\n    paper: {c.paper_numbers}"
                  f"\n    study: {c.study} ({scales}){'; figure: ' + c.figure if c.figure else ''}")
            for p in c.preconditions:
                print(f"    regime: {p.describe()}")
        return 0
    rows = reproduce(args.what, scale=args.scale, out=args.out, executor=args.executor, workers=args.workers,
                     quiet=args.quiet)
    _verdict_table(rows)
    print(f"\nverdicts: {Path(args.out) / args.scale / 'verdicts.json'}; reports: "
          + ", ".join(str(Path(args.out) / args.scale / s / 'report.html') for s in dict.fromkeys(r['study'] for r in rows)))
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

    demo = sub.add_parser("demo", help="a one-minute taste of `reproduce`: a few claims at the tiny scale, with verdicts")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--quiet", action="store_true")
    demo.set_defaults(fn=_cmd_demo)

    ls = sub.add_parser("ls", help="runs below a folder, or the points of a sweep: status, last step, last metrics")
    ls.add_argument("runs_dir", nargs="?", default="runs")
    ls.add_argument("--metrics", help="comma-separated TYPE/NAME (or PROBE/NAME) whose last values to show")
    ls.set_defaults(fn=_cmd_ls)

    sweep = sub.add_parser("sweep", help="a grid of runs (learning rate, batch size, momentum, seed...); run again to resume")
    sweep.add_argument("config", help="TOML config (its [sweep] table, if any, gives the grid and seeds)")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", help="vary a config key, e.g. optimizer.lr=0.1,0.01")
    sweep.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    sweep.add_argument("--out", help="the sweep folder (default: OUT/NAME-sweep from the config)")
    sweep.add_argument("--executor", choices=["local", "ray"], default="local")
    sweep.add_argument("--workers", type=int, default=1, help="runs at the same time")
    sweep.add_argument("--threads", type=int, help="torch threads per run (default: the cores shared out)")
    sweep.add_argument("--address", help="with --executor ray: a Ray cluster to join ('auto': this machine's)")
    sweep.add_argument("--retry-failed", action="store_true", help="run failed and diverged points again, from scratch")
    sweep.add_argument("--extend", action="store_true", help="accept new grid values or seeds for an existing sweep folder")
    sweep.add_argument("--quiet", action="store_true", help="no progress lines")
    sweep.set_defaults(fn=_cmd_sweep)

    cmp = sub.add_parser("compare", help="a statistic of one metric per grid point of a sweep, over seeds")
    cmp.add_argument("sweep", help="a sweep folder (or a folder of runs)")
    cmp.add_argument("--metric", required=True, help="TYPE/NAME, e.g. gradient_noise/lambda_1")
    cmp.add_argument("--stat", default="max", help="max | min | mean | last | argmax | first_below:X (default max)")
    when = cmp.add_mutually_exclusive_group()
    when.add_argument("--after-step", type=int, help="only steps >= S")
    when.add_argument("--after-epoch", type=float, help="only epochs >= E")
    when.add_argument("--until-accuracy", type=float, help="only until training accuracy first reaches A")
    cmp.add_argument("--by", help="group by this config key (default: every varied key but the seed)")
    cmp.set_defaults(fn=_cmd_compare)

    plot = sub.add_parser("plot", help="draw one paper figure from stored runs (--list: what can be drawn)")
    plot.add_argument("source", help="a run folder, a sweep folder or a folder of runs")
    plot.add_argument("figure", nargs="?", help="a figure name (see --list), e.g. break_even.fig2")
    plot.add_argument("-o", "--output", help="out.png | .svg | .pdf (default: FIGURE.png)")
    plot.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="a figure option, e.g. metric=train/loss")
    plot.add_argument("--list", action="store_true", help="every figure, and for those that cannot be drawn, what they need")
    plot.set_defaults(fn=_cmd_plot)

    report = sub.add_parser("report", help="one self-contained HTML report of a run or a sweep")
    report.add_argument("source", help="a run folder, a sweep folder or a folder of runs")
    report.add_argument("-o", "--output", help="the HTML file (default: SOURCE/report.html)")
    report.set_defaults(fn=_cmd_report)

    rep = sub.add_parser("reproduce", help="the papers' claims re-derived from our own runs, with verdicts")
    rep.add_argument("what", nargs="?", default="all", help="all | a paper (break_even, walk, sharpest, noise) | a claim key")
    rep.add_argument("--scale", choices=["tiny", "cpu", "paper"], default="cpu",
                     help="tiny: seconds (CI); cpu: real data, minutes on 2 cores; paper: the papers' settings (GPU)")
    rep.add_argument("--executor", choices=["local", "ray"], default="local")
    rep.add_argument("--workers", type=int, default=2)
    rep.add_argument("--out", default="runs/reproduce")
    rep.add_argument("--list", action="store_true", help="the catalogue: each claim's paper, figure, rule and settings")
    rep.add_argument("--quiet", action="store_true")
    rep.set_defaults(fn=_cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .run.config import ConfigError

    from .store._lock import FolderLocked

    try:
        return args.fn(args)
    except (ConfigError, ValueError, FileNotFoundError, FileExistsError, KeyError, LookupError, FolderLocked) as err:
        text = err.args[0] if isinstance(err, KeyError) and err.args else err  # a KeyError's str() adds quotes
        print(f"sgdscope: error: {text}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno == errno.ENOSPC:  # what was written before stays; the run resumes once space is free
            print(f"sgdscope: error: no space left on device writing {err.filename or 'the run folder'}; everything "
                  f"written before is kept: free space and resume", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
