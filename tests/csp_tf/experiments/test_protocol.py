"""The protocol end to end on a tiny world: results.csv / results.md shape, resumability."""

from __future__ import annotations

import argparse
import csv
import os

import pytest

from csp_tf.configs import ConfigError
from csp_tf.experiments import results as res
from csp_tf.experiments.protocol import Protocol, run_protocol

from experiment_helpers import stage_mtimes, tiny_experiment_config


def test_results_csv_has_one_row_per_cell(experiment_run):
    with open(os.path.join(experiment_run["out"], "results.csv"), newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        assert tuple(reader.fieldnames) == res.COLUMNS
    assert [(r["method"], float(r["ratio"]), int(r["seed"])) for r in rows] == [
        ("sup_grid", 0.5, 0), ("csp", 0.5, 0)]
    for r in rows:
        assert r["score"] == "fused" and r["split"] == "test"
        for col in ("top1", "top3", "mrr", "fused_top1", "location_top1", "image_top1"):
            assert r[col] != ""
        assert 0.0 <= float(r["top1"]) <= float(r["top3"]) <= 100.0
        assert 0.0 < float(r["mrr"]) <= 1.0
        assert float(r["top1"]) == float(r["fused_top1"])
        assert int(r["train_rows"]) > 0 and len(r["config_hash"]) == 12
    # Sup-only has no pre-training; CSP's time is recorded.
    assert rows[0]["pretrain_s"] == "" and float(rows[1]["pretrain_s"]) > 0


def test_results_md_has_a_row_per_method_and_a_column_per_ratio(experiment_run):
    text = open(os.path.join(experiment_run["out"], "results.md")).read()
    assert "## Top-1 accuracy (%)" in text and "## Top-3 accuracy (%)" in text
    top1 = text.split("## Top-1 accuracy (%)")[1].split("##")[0]
    table = [line for line in top1.splitlines() if line.startswith("|")]
    assert [c.strip() for c in table[0].strip("|").split("|")] == [
        "Method", "encoder", "pre-training", "50%"]
    assert [line.split("|")[1].strip() for line in table[2:]] == ["Sup. Only (grid)", "CSP-MC-BLD"]
    assert "cells finished: 2 / 2" in text


def test_stages_laid_out_and_progress_printed(experiment_run):
    out = experiment_run["out"]
    assert set(stage_mtimes(out)) == {
        os.path.join("pretrain", "csp", "seed0", "model.keras"),
        os.path.join("finetune", "sup_grid", "ratio0.5", "seed0", "model.keras"),
        os.path.join("finetune", "csp", "ratio0.5", "seed0", "model.keras")}
    lines = experiment_run["lines"]
    assert any(line.startswith("[1/2] sup_grid") and "top1" in line for line in lines)
    assert any("pre-training contsoftmax" in line for line in lines)


def test_rerun_skips_finished_cells(experiment_run):
    p = experiment_run["protocol"]
    before = stage_mtimes(p.out_dir)
    csv_before = open(p.results_csv).read()
    lines = []
    rows = run_protocol(p, echo=lines.append)
    assert stage_mtimes(p.out_dir) == before  # no stage re-trained or re-saved
    assert open(p.results_csv).read() == csv_before
    assert len(rows) == 2
    assert sum("skipped" in line for line in lines) == 2
    assert lines[-1].startswith("experiment: 0 cell(s) run")


def test_rerun_without_a_row_reuses_the_trained_stages(experiment_run):
    """A cell whose row is missing (e.g. killed during evaluation) is re-evaluated from its
    saved stage: nothing is trained again (no new checkpoint, pre-training untouched) and the
    metrics are the same."""
    p = experiment_run["protocol"]
    before = stage_mtimes(p.out_dir)
    cell = os.path.join(p.out_dir, "finetune", "csp", "ratio0.5", "seed0", "checkpoints")
    checkpoints = sorted(os.listdir(cell))
    rows = res.read_results(p.results_csv)
    dropped = [r for r in rows if r["method"] == "csp"][0]
    res.write_results(p.results_csv, [r for r in rows if r["method"] != "csp"])
    lines = []
    new = {r["method"]: r for r in run_protocol(p, echo=lines.append)}
    after = stage_mtimes(p.out_dir)
    for stage in ("pretrain", os.path.join("finetune", "sup_grid")):
        assert {k: v for k, v in after.items() if k.startswith(stage)} == \
            {k: v for k, v in before.items() if k.startswith(stage)}
    assert sorted(os.listdir(cell)) == checkpoints
    assert new["csp"]["top1"] == pytest.approx(dropped["top1"], abs=1e-3)
    # The CSV keeps 6 significant digits; the re-run reads the full-precision stage record.
    assert new["csp"]["finetune_s"] == pytest.approx(dropped["finetune_s"], rel=1e-5)
    assert sum("skipped" in line for line in lines) == 1


def test_a_changed_config_is_refused_not_mixed_in(experiment_run):
    p = experiment_run["protocol"]
    cfg = tiny_experiment_config()
    cfg.finetune.epochs = 3
    changed = Protocol(data_root=p.data_root, out_dir=p.out_dir, base_config=cfg,
                       methods=p.methods, ratios=p.ratios, seeds=p.seeds)
    with pytest.raises(ConfigError, match="different config"):
        run_protocol(changed, echo=lambda _: None)


def test_cli_parses_the_grid_and_rejects_a_bad_data_root(tmp_path):
    from csp_tf.cli import CLIError
    from csp_tf.experiments.cli import add_experiment_parser

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    add_experiment_parser(sub)
    args = parser.parse_args(["experiment", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"),
                              "--ratios", "0.05,1.0", "--methods", "csp,sup_grid",
                              "--set", "finetune.epochs=1"])
    assert args.ratios == "0.05,1.0" and args.overrides == ["finetune.epochs=1"]
    with pytest.raises(CLIError, match="metadata.json"):
        args.func(args)


def test_learning_curves_recorded_every_n_epochs(tiny_world, tmp_path):
    """--eval-every: val top-1 in history.json; the fused curve uses the Img-only cell's image
    classifier, which is the one the cell itself trains (same labels, same seed)."""
    import json

    from csp_tf.experiments.methods import parse_methods

    cfg = tiny_experiment_config()
    cfg.finetune.fusion = "product"  # the curve's fused score is the product; so is the row's
    cfg.finetune.place_memory = "off"  # the curve scores the network; so must the row
    p = Protocol(data_root=tiny_world["data_root"], out_dir=str(tmp_path / "curves"),
                 base_config=cfg, methods=parse_methods("img_only,sup_grid"),
                 ratios=[0.5], seeds=[0], eval_every=1)
    rows = {r["method"]: r for r in run_protocol(p, echo=lambda _: None)}
    history = json.load(open(os.path.join(p.finetune_dir(p.methods[1], 0.5, 0), "history.json")))
    curve = [h for h in history if "epoch" in h and h.get("stage") != "image_classifier"]
    assert [h["epoch"] for h in curve] == [1, 2]
    assert all("val_fused_top1" in h and "val_location_top1" in h for h in curve)
    assert curve[-1]["val_fused_top1"] == pytest.approx(rows["sup_grid"]["fused_top1"], abs=1e-3)
    assert curve[-1]["val_location_top1"] == pytest.approx(rows["sup_grid"]["location_top1"], abs=1e-3)
    assert os.path.getsize(os.path.join(p.out_dir, "learning_curves.png")) > 10_000
