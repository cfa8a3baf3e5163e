"""``csp-tf experiment``, ``tune``, ``report`` and ``compare``: sub-commands registered by the main
CLI (``csp-tf map`` is in :mod:`csp_tf.experiments.map_cli`).

The console script (``csp_cli``) calls ``add_experiment_parser(subparsers)``,
``add_tune_parser``, ``add_report_parser`` and ``add_compare_parser``. TensorFlow is imported
only when a command runs, so ``csp-tf --help`` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import List

from csp_tf import cli
from csp_tf.cli import CLIError, load_config
from csp_tf.experiments.methods import (DEFAULT_METHODS, DEFAULT_RATIOS, DEFAULT_SEEDS, METHODS,
                                        describe)

EXPERIMENT_EPILOG = """\
methods (default: {defaults}):
{methods}

examples:
  csp-tf generate --out runs/world --size benchmark --ingest
  csp-tf experiment --data-root runs/world/data --out runs/exp
  csp-tf experiment --data-root runs/world/data --out runs/exp_fast --ratios 0.05 --seeds 0 \\
      --methods img_only,sup_grid,csp --set finetune.epochs=20
  csp-tf experiment --plan experiments/places_countries.yaml          # a committed plan, every run
  csp-tf experiment --plan experiments/places_countries.yaml --list   # its runs as command lines

writes OUT/results.csv (one row per method × ratio × seed) and OUT/results.md (mean ± std over
seeds). Re-running the same command skips finished cells and resumes interrupted ones.
"""

def add_config_args(p: argparse.ArgumentParser, applies_to: str) -> None:
    """--preset / --config / --set of a protocol-running command. It prints one line per cell,
    so the stages' own log lines go to the log file only (``-v`` shows them)."""
    cli.add_config_args(p, applies_to)
    p.set_defaults(terminal_level=logging.WARNING)


def run_config(args: argparse.Namespace):
    """The base config of a protocol-running command: no progress bars unless -v."""
    cfg = load_config(args)
    cfg.runtime.progress = bool(getattr(args, "verbose", False))
    return cfg


def add_experiment_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``experiment``: the methods × label ratios × seeds protocol."""
    p = subparsers.add_parser(
        "experiment", help="run the paper's protocol: methods × label ratios × seeds -> results table",
        description="Pre-trains each method once per seed, fine-tunes it at every label ratio, "
                    "chooses what is chosen on data (image-probe L2, fusion weights, the "
                    "baselines' k and C) on the val split, evaluates on --split (default test) "
                    "and writes results.csv and results.md. The scikit-learn baselines are "
                    "always in the table.",
        epilog=EXPERIMENT_EPILOG.format(defaults=",".join(DEFAULT_METHODS),
                                        methods=describe(list(METHODS.values()))),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=None, help="output dir of `csp-tf ingest` (required "
                                                      "unless --plan)")
    p.add_argument("--out", default=None, help="experiment dir (stages, results.csv, results.md; "
                                               "required unless --plan)")
    p.add_argument("--plan", default=None, metavar="FILE",
                   help="an experiment plan (YAML: data root, output root, base config, runs of "
                        "methods × ratios × seeds with overrides; see experiments/README.md); "
                        "replaces every other grid and config flag")
    p.add_argument("--only", default=None, metavar="RUNS",
                   help="with --plan: only these runs, comma-separated names")
    p.add_argument("--list", action="store_true",
                   help="with --plan: print each run as the equivalent command line, run nothing")
    p.add_argument("--ratios", default=None,
                   help="label ratios, comma-separated (default " +
                        ",".join(f"{r:g}" for r in DEFAULT_RATIOS) + ")")
    p.add_argument("--seeds", default=None,
                   help="seeds, comma-separated (default " + ",".join(map(str, DEFAULT_SEEDS)) + ")")
    p.add_argument("--methods", default=None, help="method keys, comma-separated (see below)")
    p.add_argument("--split", default="test", choices=["val", "test"],
                   help="evaluation split (default test; selection always uses val)")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the scikit-learn baselines (only for a run whose results are merged "
                        "by `csp-tf report` with one that has them)")
    p.add_argument("--eval-every", type=int, default=0, metavar="N",
                   help="learning curves: evaluate every N fine-tuning epochs (history.json, "
                        "OUT/learning_curves.png); fused top-1 needs img_only in --methods")
    p.add_argument("--base-model", default=None, metavar="NAME|DIR",
                   help="pre-training methods fine-tune from this pre-trained encoder (a shipped "
                        "name, an encoder dir or a `csp-tf pretrain` dir) instead of pre-training "
                        "once per seed; its network and scales replace the method's")
    add_config_args(p, "every method, e.g. --set finetune.epochs=20")
    p.set_defaults(func=cmd_experiment)
    return p


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``report``: one results.md from several experiment dirs (e.g. one per seed)."""
    p = subparsers.add_parser(
        "report", help="merge the results.csv of several experiment dirs into one results.md",
        description="Reads EXP/results.csv and EXP/protocol.json of each dir (same data root, "
                    "split, e.g. one dir per seed or the runs of a plan) and writes one "
                    "mean ± std table set to --out (results.md) and --csv.")
    p.add_argument("experiments", nargs="*", help="experiment dirs")
    p.add_argument("--plan", default=None, metavar="FILE",
                   help="also every run dir of this experiment plan (after the dirs given)")
    p.add_argument("--paired", default=None, metavar="METHOD",
                   help="also a table of METHOD against every other trained method, paired by "
                        "seed (location-only and fused points, mean ± std)")
    p.add_argument("--out", required=True, help="markdown file to write")
    p.add_argument("--csv", default=None, help="merged results.csv to write")
    p.add_argument("--gain-plot", default=None, metavar="PNG",
                   help="also draw each method's paired top-1 gain over Sup. Only (grid) against "
                        "the label ratio")
    p.set_defaults(func=cmd_report)
    return p


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from csp_tf.experiments import results as res
    from csp_tf.experiments.methods import METHODS, Method

    rows, infos = [], []
    dirs = _experiment_dirs(args)
    for d in dirs:
        path = os.path.join(d, "protocol.json")
        if not os.path.exists(path):
            raise CLIError(f"{d} has no protocol.json: not a `csp-tf experiment` dir")
        infos.append(json.load(open(path)))
        rows += res.read_results(os.path.join(d, "results.csv"))
    rows = _one_row_per_cell(rows, dirs)
    # one data root written relative (from the repo) and absolute (from elsewhere) is the same
    keys = {(os.path.realpath(i["data_root"]), i["split"]) for i in infos}
    if len(keys) != 1:
        raise CLIError(f"the experiments differ in data root / split: {sorted(keys)}")
    methods: list = []
    for info in infos:
        for m in info["methods"]:
            if m["name"] not in [x.name for x in methods]:
                methods.append(METHODS.get(m["name"]) or Method(**m))
    ratios = sorted({float(r["ratio"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    data_root, split = keys.pop()
    text = res.render_markdown(rows, methods, ratios, seeds, data_root=data_root, split=split,
                               preset=infos[0]["config_name"],
                               total_cells=len(methods) * len(ratios) * len(seeds))
    if getattr(args, "paired", None):
        if args.paired not in [m.name for m in methods]:
            raise CLIError(f"--paired {args.paired!r}: no such method in these experiments "
                           f"({', '.join(m.name for m in methods)})")
        text += res.paired_section(rows, args.paired, methods)
    with open(args.out, "w") as f:
        f.write(text)
    if args.csv:
        res.write_results(args.csv, rows)
    if args.gain_plot:
        from csp_tf.experiments.gain_plot import plot_paired_gains
        try:
            print(f"wrote {plot_paired_gains(rows, methods, args.gain_plot)}")
        except ValueError as exc:
            raise CLIError(f"--gain-plot: {exc}") from None
    print(f"wrote {args.out}: {len(rows)} cells, {len(methods)} methods, seeds {seeds}")
    return 0


def _one_row_per_cell(rows: List[dict], dirs: List[str]) -> List[dict]:
    """Rows with one per (method, ratio, seed). A baseline repeated in several dirs is
    deterministic (same labels, same val choice): the first is kept. Two trained cells with one
    key were trained differently (e.g. two recipes): averaging them would mix recipes."""
    from csp_tf.experiments import results as res
    from csp_tf.experiments.methods import METHODS

    kept: dict = {}
    for row in rows:
        key = res.cell_key(str(row["method"]), float(row["ratio"]), int(row["seed"]))
        if key not in kept:
            kept[key] = row
        elif not (METHODS.get(key[0]) and METHODS[key[0]].baseline):
            raise CLIError(f"{key[0]} ratio={key[1]:g} seed={key[2]} is in more than one of "
                           f"{', '.join(dirs)}; report them separately")
    return list(kept.values())


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``compare``: paired significance of each cell against a location baseline."""
    p = subparsers.add_parser(
        "compare", help="is each model's location-only top-1 really above the kNN? (McNemar, "
                        "paired on the same rows)",
        description="Loads every fine-tuned cell of the experiment dirs, scores its P(y|loc) and "
                    "a location baseline (fitted on the cell's label subset, chosen on val) on "
                    "the same rows of --split, and writes the paired difference with its 95 %% "
                    "interval and McNemar's exact p per cell, and a summary per method and ratio.")
    p.add_argument("experiments", nargs="*", help="experiment dirs (their finetune/ cells)")
    p.add_argument("--plan", default=None, metavar="FILE",
                   help="also every run dir of this experiment plan; its data root is the default "
                        "--data-root")
    p.add_argument("--data-root", default=None,
                   help="the data root the cells were trained on (required unless --plan)")
    p.add_argument("--split", default="test", choices=["val", "test"], help="default test")
    p.add_argument("--against", default="knn_sphere", choices=["knn_sphere", "lr_sincos"],
                   help="the baseline (default knn_sphere)")
    p.add_argument("--methods", default=None, help="only these method keys, comma-separated")
    p.add_argument("--ratios", default=None, help="only these label ratios, comma-separated")
    p.add_argument("--out", required=True, help="markdown file to write")
    p.add_argument("--json", default=None, help="also write the rows as JSON")
    p.set_defaults(func=cmd_compare)
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from csp_tf.experiments.methods import parse_ratios
    from csp_tf.experiments.significance import compare_cells, find_cells, render

    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    dirs = _experiment_dirs(args)
    data_root = args.data_root or (_plan(args.plan).data_root if args.plan else None)
    if not data_root:
        raise CLIError("give --data-root (or --plan, whose data root is used)")
    try:
        cells = find_cells(dirs, methods,
                           parse_ratios(args.ratios) if args.ratios else None)
    except FileNotFoundError as exc:
        raise CLIError(str(exc)) from None
    if not cells:
        raise CLIError("no fine-tuned cells (finetune/<method>/ratio<r>/seed<s>/model.keras) "
                       "match under " + ", ".join(dirs))
    try:
        rows = compare_cells(data_root, cells, args.split, args.against,
                             echo=lambda line: print(line, flush=True))
    except (ValueError, FileNotFoundError) as exc:  # a cell of other data, a damaged cell dir
        raise CLIError(str(exc)) from None
    with open(args.out, "w") as f:
        f.write(render(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    print(f"wrote {args.out}: {len(rows)} cells")
    return 0


def add_tune_parser(subparsers) -> argparse.ArgumentParser:
    """Registers ``tune``: a budgeted random search on val for one method and label ratio."""
    p = subparsers.add_parser(
        "tune", help="budgeted random search on the val split (min_radius, lr, steps, dropout, "
                     "width, temperature) -> best.yaml",
        description="Trains one method at one label ratio for each of --budget configurations "
                    "(trial 0 = the base config), scores each on the val split (never test) and "
                    "writes OUT/tune.csv and OUT/best.yaml for `csp-tf experiment --config`.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", required=True, help="output dir of `csp-tf ingest`")
    p.add_argument("--out", required=True, help="tuning dir (trials, tune.csv, best.yaml)")
    p.add_argument("--method", default="sup_grid", help="method key (default sup_grid)")
    p.add_argument("--ratio", type=float, default=0.05, help="label ratio (default 0.05)")
    p.add_argument("--budget", type=int, default=8, help="number of trials (default 8)")
    p.add_argument("--seed", type=int, default=0, help="search and training seed")
    p.add_argument("--objective", default="fused", choices=["fused", "location"],
                   help="val top-1 to maximise (default fused)")
    add_config_args(p, "every trial")
    p.set_defaults(func=cmd_tune)
    return p


def cmd_tune(args: argparse.Namespace) -> int:
    from csp_tf.experiments.tune import run_tune

    cfg = run_config(args)
    run_tune(args.data_root, args.out, cfg, args.method, args.ratio, max(1, args.budget),
             seed=args.seed, objective=args.objective, echo=lambda line: print(line, flush=True))
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from csp_tf.experiments.methods import (parse_methods, parse_ratios, parse_seeds,
                                            with_baselines)
    from csp_tf.experiments.protocol import Protocol, run_protocol

    if args.plan:
        return _run_plan(args)
    if args.only or args.list:
        raise CLIError("--only and --list go with --plan")
    if not args.data_root or not args.out:
        raise CLIError("give --data-root and --out (or --plan FILE)")
    _check_data_root(args.data_root)
    cfg = run_config(args)
    name = f"`{args.config or args.preset or 'demo'}`"
    if args.overrides:
        name += " with " + ", ".join(f"`{o}`" for o in args.overrides)
    protocol = Protocol(data_root=args.data_root, out_dir=args.out, base_config=cfg,
                        methods=(parse_methods(args.methods) if args.no_baselines
                                 else with_baselines(parse_methods(args.methods))),
                        ratios=parse_ratios(args.ratios),
                        seeds=parse_seeds(args.seeds), split=args.split, config_name=name,
                        eval_every=max(0, args.eval_every), base_model=args.base_model)
    run_protocol(protocol, echo=lambda line: print(line, flush=True))
    return 0


def _check_data_root(data_root: str) -> None:
    if not os.path.exists(os.path.join(data_root, "metadata.json")):
        raise CLIError(f"--data-root {data_root!r} has no metadata.json: run `csp-tf ingest` "
                       "(or `csp-tf generate --ingest`) first")


def _plan(path: str):
    from csp_tf.configs import ConfigError
    from csp_tf.experiments.plan import load_plan
    try:
        return load_plan(path)
    except ConfigError as exc:
        raise CLIError(str(exc)) from None


def _experiment_dirs(args: argparse.Namespace) -> List[str]:
    """The positional experiment dirs, then the run dirs of --plan; at least one."""
    dirs = list(args.experiments)
    if getattr(args, "plan", None):
        dirs += [r.out_dir for r in _plan(args.plan).runs if r.out_dir not in dirs]
    if not dirs:
        raise CLIError("give experiment dirs or --plan FILE")
    return dirs


# Flags an experiment plan replaces: giving one beside --plan would be silently ignored.
_GRID_FLAGS = ("data_root", "out", "ratios", "seeds", "methods", "preset", "config")


def _run_plan(args: argparse.Namespace) -> int:
    """``csp-tf experiment --plan FILE``: each selected run as one protocol, in plan order."""
    from csp_tf.experiments.protocol import Protocol, run_protocol

    given = [f"--{f.replace('_', '-')}" for f in _GRID_FLAGS if getattr(args, f, None)]
    given += ["--set"] * bool(args.overrides) + ["--no-baselines"] * bool(args.no_baselines)
    given += ["--split"] * (args.split != "test") + ["--eval-every"] * bool(args.eval_every)
    if given:
        raise CLIError(f"--plan holds the whole grid and config; drop {', '.join(given)} "
                       "(or edit the plan)")
    plan = _plan(args.plan)
    runs = plan.select([n for n in (args.only or "").split(",") if n])
    if args.list:
        for run in runs:
            print(plan.command(run))
        return 0
    _check_data_root(plan.data_root)
    for i, run in enumerate(runs, 1):
        print(f"plan {args.plan}: run {i}/{len(runs)} {run.name} -> {run.out_dir}", flush=True)
        cfg = plan.run_config(run)
        cfg.runtime.progress = bool(getattr(args, "verbose", False))
        protocol = Protocol(data_root=plan.data_root, out_dir=run.out_dir, base_config=cfg,
                            methods=run.methods, ratios=run.ratios, seeds=run.seeds,
                            split=plan.split, config_name=plan.config_name(run),
                            base_model=run.base_model)
        run_protocol(protocol, echo=lambda line: print(line, flush=True))
    return 0
