"""Experiment plans: loading and checking, the equivalent command lines, the committed plans,
and `csp-tf experiment / report / compare --plan` on a tiny world."""

from __future__ import annotations

import argparse
import glob
import os
import shlex
import textwrap

import pytest

from csp_tf.cli import CLIError
from csp_tf.configs import ConfigError
from csp_tf.experiments import results as res
from csp_tf.experiments.plan import load_plan

from experiment_helpers import tiny_experiment_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

PLAN = """\
data_root: runs/places/data
out: runs/results/countries
preset: places
methods: [sup_grid, csp_multiply]
seeds: [0, 1]
set: {finetune.min_steps: 750}
runs:
  - name: r01
    ratios: [0.01]
    set: {location_encoder.position.gridcell.min_radius: 2.0}
  - name: r20
    ratios: [0.2]
    seeds: [0]
    baselines: false
    set: {finetune.min_steps: 8000}
  - name: pretrain_ablation
    study: pretrain
    ratios: [0.05]
"""


def write(tmp_path, text: str, name: str = "plan.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def parser():
    from csp_cli import build_parser
    return build_parser()


def test_runs_inherit_the_defaults_and_layer_their_overrides(tmp_path):
    plan = load_plan(write(tmp_path, PLAN))
    r01, r20, abl = plan.runs
    assert [r.out_dir for r in plan.runs] == [os.path.join("runs/results/countries", n)
                                               for n in ("r01", "r20", "pretrain_ablation")]
    assert [m.name for m in r01.methods][:2] == ["sup_grid", "csp_multiply"]
    assert {"knn_sphere", "lr_sincos"} <= {m.name for m in r01.methods}  # baselines by default
    assert [m.name for m in r20.methods] == ["sup_grid", "csp_multiply"]  # baselines: false
    assert r01.ratios == [0.01] and r01.seeds == [0, 1] and r20.seeds == [0]
    assert r01.overrides == {"finetune.min_steps": 750,
                             "location_encoder.position.gridcell.min_radius": 2.0}
    assert r20.overrides == {"finetune.min_steps": 8000}  # the run's value wins
    cfg = plan.run_config(r01)
    assert cfg.finetune.min_steps == 750
    assert cfg.location_encoder.position.options.min_radius == 2.0
    assert abl.study == "pretrain" and all(m.name.startswith("pt_") for m in abl.methods)
    assert plan.split == "test"


def test_the_listed_command_runs_the_same_grid_and_config(tmp_path):
    """`--list` prints a command line; parsed by the real CLI it asks for the same cells."""
    from csp_tf.cli import load_config
    from csp_tf.experiments.methods import parse_methods, parse_ratios, parse_seeds, with_baselines

    plan = load_plan(write(tmp_path, PLAN))
    for run in plan.runs[:2]:
        words = shlex.split(plan.command(run))
        assert words[:2] == ["csp-tf", "experiment"]
        args = parser().parse_args(words[1:])
        methods = parse_methods(args.methods)
        if not args.no_baselines:
            methods = with_baselines(methods)
        assert [m.name for m in methods] == [m.name for m in run.methods]
        assert parse_ratios(args.ratios) == run.ratios and parse_seeds(args.seeds) == run.seeds
        assert args.out == run.out_dir and args.data_root == plan.data_root
        assert load_config(args).to_dict() == plan.run_config(run).to_dict()
    assert shlex.split(plan.command(plan.runs[2]))[:4] == ["csp-tf", "ablation", "--study",
                                                           "pretrain"]


@pytest.mark.parametrize("text, words", [
    ("out: o\nruns: [{name: a}]\n", "data_root is required"),
    ("data_root: d\nout: o\nratio: [0.1]\n", "unknown key(s) ratio"),
    ("data_root: d\nout: o\nruns: [{name: a, sets: {}}]\n", "runs[0]: unknown key(s) sets"),
    ("data_root: d\nout: o\nruns: [{name: a}, {name: a}]\n", "must be unique"),
    ("data_root: d\nout: o\nruns: [{name: a, ratios: [1.5]}]\n", "runs[0]: --ratios"),
    ("data_root: d\nout: o\nruns: [{name: a, methods: [nope]}]\n", "unknown method 'nope'"),
    ("data_root: d\nout: o\nruns: [{name: a, study: nope}]\n", "study 'nope' unknown"),
    ("data_root: d\nout: o\npreset: places\nconfig: c.yaml\n", "preset or config, not both"),
    ("data_root: d\nout: o\nsplit: train\n", "split must be val or test"),
    ("data_root: d\nout: o\nruns: [{name: a, set: {finetune.min_stpes: 1}}]\n", "run a: "),
])
def test_a_bad_plan_is_refused_before_anything_runs(tmp_path, text, words):
    with pytest.raises(ConfigError) as exc:
        load_plan(write(tmp_path, text))
    assert words in str(exc.value)


def test_unknown_run_names_and_flags_beside_the_plan_are_refused(tmp_path, capsys):
    path = write(tmp_path, PLAN)
    with pytest.raises(ConfigError, match="no run named r05"):
        load_plan(path).select(["r05"])
    for extra in (["--set", "finetune.lr=1"], ["--ratios", "0.1"], ["--out", "x"]):
        args = parser().parse_args(["experiment", "--plan", path, *extra])
        with pytest.raises(CLIError, match="--plan holds the whole grid"):
            args.func(args)
    args = parser().parse_args(["experiment", "--plan", path, "--only", "r20", "--list"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == load_plan(path).command(load_plan(path).runs[1])
    with pytest.raises(CLIError, match="--only and --list go with --plan"):
        args = parser().parse_args(["experiment", "--data-root", "d", "--out", "o", "--list"])
        args.func(args)


def test_every_committed_plan_loads():
    """The plans docs/results.md points to: valid keys, methods and config overrides."""
    paths = sorted(glob.glob(os.path.join(REPO, "experiments", "*.yaml")))
    assert paths, "no experiment plans under experiments/"
    for path in paths:
        plan = load_plan(path)
        assert plan.runs and plan.data_root.startswith("runs/") and plan.out.startswith("runs/")
        outs = [r.out_dir for r in plan.runs]
        assert len(set(outs)) == len(outs)


def test_paired_table_bolds_differences_beyond_the_seed_spread():
    from csp_tf.experiments.methods import get_method
    rows = ([dict(method="csp_multiply", ratio=0.01, seed=s, top1=91.0 + 0.1 * s,
                  location_top1=91.0 + s) for s in range(3)]
            + [dict(method="sup_grid", ratio=0.01, seed=s, top1=91.0, location_top1=90.0)
               for s in range(3)])
    text = res.paired_section(rows, "csp_multiply",
                              [get_method(n) for n in ("sup_grid", "csp_multiply", "knn_sphere")])
    lines = [line for line in text.splitlines() if line.startswith("| Sup. Only (grid)")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "Sup. Only (grid)", "location-only", "**+2.00 ± 1.00** (n=3)"]
    assert [c.strip() for c in lines[1].strip("|").split("|")] == [
        "Sup. Only (grid)", "fused", "+0.10 ± 0.10 (n=3)"]  # |mean| = std: within the spread
    assert "kNN" not in text  # baselines are not paired


def test_experiment_report_and_compare_run_a_plan(tiny_world, tmp_path, capsys):
    """Two runs of a plan on a tiny world (one per ratio, one with an override); report and
    compare find their dirs and the data root from the plan."""
    config = str(tmp_path / "tiny.yaml")
    tiny_experiment_config().save(config)
    path = write(tmp_path, f"""\
        data_root: {tiny_world['data_root']}
        out: {tmp_path / 'out'}
        config: {config}
        methods: [sup_grid]
        seeds: [0]
        runs:
          - name: half
            ratios: [0.5]
          - name: all_labels
            ratios: [1.0]
            baselines: false
            set: {{finetune.min_steps: 8}}
        """)
    args = parser().parse_args(["experiment", "--plan", path])
    assert args.func(args) == 0
    half = res.read_results(str(tmp_path / "out" / "half" / "results.csv"))
    full = res.read_results(str(tmp_path / "out" / "all_labels" / "results.csv"))
    assert {"sup_grid", "knn_sphere", "lr_sincos"} <= {r["method"] for r in half}
    assert [(r["method"], r["ratio"]) for r in full] == [("sup_grid", 1.0)]  # no baselines
    md = str(tmp_path / "merged.md")
    args = parser().parse_args(["report", "--plan", path, "--out", md])
    assert args.func(args) == 0
    table = open(md).read().split("## Top-1 accuracy (%)")[1].split("##")[0]
    assert "| 50%" in table and "| 100%" in table and "Sup. Only (grid)" in table
    cmp_md = str(tmp_path / "vs_knn.md")
    args = parser().parse_args(["compare", "--plan", path, "--out", cmp_md])
    assert args.func(args) == 0
    assert open(cmp_md).read().count("sup_grid") >= 2  # a cell of each run
    with pytest.raises(CLIError, match="no such method"):
        args = parser().parse_args(["report", "--plan", path, "--out", md, "--paired", "csp"])
        args.func(args)


def test_report_keeps_one_baseline_row_and_refuses_two_recipes_of_one_cell(tmp_path):
    """Runs of a plan share baseline rows (deterministic: kept once) but two trained cells of
    one (method, ratio, seed) are two recipes, which a mean must not mix."""
    import json

    from csp_tf.experiments.cli import cmd_report
    from csp_tf.experiments.methods import get_method

    def metrics(top1):
        part = {"top1": top1, "top3": top1, "top5": top1, "mrr": 0.5, "count": 10}
        return {"fused": part, "location": part, "image": part}

    def experiment(name, cells):
        d = tmp_path / name
        d.mkdir()
        (d / "protocol.json").write_text(json.dumps({
            "data_root": "R", "split": "test", "config_name": "x",
            "methods": [{"name": m} for m in dict.fromkeys(m for m, _ in cells)]}))
        res.write_results(str(d / "results.csv"), [
            res.metrics_row(get_method(m), 0.05, 0, "test",
                            {"location": metrics(v)["location"]} if get_method(m).baseline
                            else metrics(v)) for m, v in cells])
        return str(d)

    a = experiment("a", [("sup_grid", 50.0), ("knn_sphere", 60.0)])
    b = experiment("b", [("csp", 52.0), ("knn_sphere", 60.0)])
    out = tmp_path / "m.md"
    cmd_report(argparse.Namespace(experiments=[a, b], plan=None, out=str(out),
                                  csv=str(tmp_path / "m.csv"), gain_plot=None, paired=None))
    assert sorted(r["method"] for r in res.read_results(str(tmp_path / "m.csv"))) == [
        "csp", "knn_sphere", "sup_grid"]
    c = experiment("c", [("sup_grid", 51.0)])
    with pytest.raises(CLIError, match="sup_grid ratio=0.05 seed=0 is in more than one"):
        cmd_report(argparse.Namespace(experiments=[a, c], plan=None, out=str(out), csv=None,
                                      gain_plot=None, paired=None))


def test_base_model_reaches_the_command_and_the_run(tmp_path):
    plan = load_plan(write(tmp_path, """\
        data_root: runs/places/data
        out: runs/results/transfer
        preset: places
        methods: [sup_grid, csp_multiply]
        base_model: world
        runs:
          - name: given
            ratios: [0.05]
          - name: own
            ratios: [0.05]
            base_model: places
        """))
    given, own = plan.runs
    assert (given.base_model, own.base_model) == ("world", "places")
    words = shlex.split(plan.command(given))
    assert words[words.index("--base-model") + 1] == "world"
    assert "fine-tuned from `world`" in plan.config_name(given)
    with pytest.raises(ConfigError, match="base_model goes with methods, not a study"):
        load_plan(write(tmp_path, """\
            data_root: d
            out: o
            runs:
              - name: s
                study: pretrain
                base_model: places
            """, "bad.yaml"))
