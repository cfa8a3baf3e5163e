"""results.csv round trip and the mean ± std tables (pure Python, no training)."""

from __future__ import annotations

import math
import os

import pytest

from csp_tf.experiments import results as res
from csp_tf.experiments.methods import get_method


def _metrics(top1, loc_top1=10.0):
    part = lambda t: {"top1": t, "top3": t + 5, "top5": t + 8, "top10": t + 9, "mrr": t / 100,
                      "count": 50.0}
    return {"fused": part(top1), "image": part(top1 - 3), "location": part(loc_top1)}


def cells(line: str) -> list:
    """The cells of one markdown table line, padding stripped."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_row_round_trip_and_img_only_uses_the_image_score(tmp_path):
    rows = [res.metrics_row(get_method("csp"), 0.05, 0, "val", _metrics(40.0), config_hash="abc"),
            res.metrics_row(get_method("img_only"), 0.05, 0, "val", _metrics(40.0))]
    assert rows[1]["score"] == "image" and rows[1]["top1"] == 37.0
    assert math.isnan(rows[1]["location_top1"])  # no location model was trained
    path = str(tmp_path / "r.csv")
    res.write_results(path, rows)
    back = res.read_results(path)
    assert back[0]["top1"] == 40.0 and back[0]["seed"] == 0 and back[0]["config_hash"] == "abc"
    assert math.isnan(back[1]["location_top1"])


def test_summary_is_mean_and_sample_std_over_seeds():
    rows = [res.metrics_row(get_method("csp"), 0.1, s, "val", _metrics(t))
            for s, t in enumerate([40.0, 42.0, 44.0])]
    rows.append(res.metrics_row(get_method("img_only"), 0.1, 0, "val", _metrics(40.0)))
    stats = res.summarize(rows, "top1").loc[("csp", 0.1)]
    assert (stats["mean"], stats["count"]) == (42.0, 3) and stats["std"] == pytest.approx(2.0)
    # One seed: no std. A metric the method has not got (NaN) is no sample at all.
    assert math.isnan(res.summarize(rows, "top1").loc[("img_only", 0.1), "std"])
    assert ("img_only", 0.1) not in res.summarize(rows, "location_top1").index


def test_markdown_table_bolds_the_best_and_marks_missing_seeds():
    methods = [get_method("sup_grid"), get_method("csp")]
    rows = [res.metrics_row(methods[0], 0.05, 0, "val", _metrics(30.0)),
            res.metrics_row(methods[0], 0.05, 1, "val", _metrics(32.0)),
            res.metrics_row(methods[1], 0.05, 0, "val", _metrics(35.0))]
    table = res.markdown_table(rows, "top1", methods, [0.05, 1.0], n_seeds=2).splitlines()
    assert cells(table[0]) == ["Method", "encoder", "pre-training", "5%", "100%"]
    assert set(table[1]) == {"|", "-"}
    assert cells(table[2]) == ["Sup. Only (grid)", "gridcell", "none", "31.00 ± 1.41", "–"]
    assert cells(table[3]) == ["CSP-MC-BLD", "gridcell", "contsoftmax", "**35.00** (n=1)", "–"]


def test_gain_table_pairs_seeds_and_quotes_the_paper():
    from csp_tf.experiments.results import gain_table, paired_gain
    rows = ([dict(method="csp", ratio=0.05, seed=s, top1=50.0 + s, location_top1=40.0)
             for s in range(3)]
            + [dict(method="sup_grid", ratio=0.05, seed=s, top1=45.0 + 0.5 * s, location_top1=40.0)
               for s in range(3)])
    g = paired_gain(rows, "csp", "sup_grid", "top1")[0.05]
    assert g[3] == 3 and abs(g[1] - 5.5) < 1e-9 and abs(g[0] - 100 * 5.5 / 45.5) < 1e-9
    table = gain_table(rows).splitlines()
    assert cells(table[0]) == ["score", "5%", "10%", "20%"]
    assert cells(table[2]) == ["fused top-1", "+12.1 % (+5.50 ± 0.50 pts, n=3)", "–", "–"]
    assert cells(table[3]) == ["location-only top-1", "+0.0 % (+0.00 ± 0.00 pts, n=3)", "–", "–"]
    assert cells(table[4]) == ["paper (iNat2018, Table 1)", "+10.4 %", "+34.3 %", "+16.6 %"]


def test_report_merges_seed_lanes(tmp_path):
    import json
    from csp_tf.experiments.cli import cmd_report
    import argparse
    # one run named the data root relative to the cwd, the other absolute: the same root
    for seed, top1, root in ((0, 50.0, "R"), (1, 54.0, os.path.abspath("R"))):
        d = tmp_path / f"seed{seed}"
        d.mkdir()
        (d / "protocol.json").write_text(json.dumps({
            "data_root": root, "split": "test", "config_name": "x",
            "methods": [{"name": "csp"}]}))
        res.write_results(str(d / "results.csv"),
                          [res.metrics_row(get_method("csp"), 0.05, seed, "test", _metrics(top1))])
    out = tmp_path / "merged.md"
    cmd_report(argparse.Namespace(experiments=[str(tmp_path / "seed0"), str(tmp_path / "seed1")],
                                  out=str(out), csv=str(tmp_path / "m.csv"), gain_plot=None))
    text = out.read_text()
    assert "52.00 ± 2.83" in text and "seeds 0, 1" in text
    assert len(res.read_results(str(tmp_path / "m.csv"))) == 2


def test_gain_plot_draws_paired_gains_and_refuses_unpaired_rows(tmp_path):
    from csp_tf.experiments.gain_plot import plot_paired_gains
    from csp_tf.experiments.methods import METHODS
    rows = [dict(method=m, ratio=r, seed=s, top1=90.0 + d * r + s, location_top1=89.0 + d)
            for m, d in (("sup_grid", 0.0), ("csp_multiply", 1.0))
            for r in (0.01, 0.05) for s in range(2)]
    methods = [METHODS["sup_grid"], METHODS["csp_multiply"], METHODS["knn_sphere"]]
    path = plot_paired_gains(rows, methods, str(tmp_path / "g.png"))
    assert os.path.getsize(path) > 10_000
    with pytest.raises(ValueError, match="no method has cells paired"):
        plot_paired_gains([r for r in rows if r["method"] == "sup_grid"], methods,
                          str(tmp_path / "h.png"))


def test_the_network_alone_is_recorded_and_tabled_only_for_models_with_a_memory(tmp_path):
    with_memory = dict(_metrics(40.0, loc_top1=30.0), location_network=_metrics(0, 27.0)["location"])
    rows = [res.metrics_row(get_method("csp"), 0.05, 0, "test", with_memory),
            res.metrics_row(get_method("sup_grid"), 0.05, 0, "test", _metrics(38.0))]
    assert rows[0]["location_network_top1"] == 27.0 and math.isnan(rows[1]["location_network_top1"])
    path = str(tmp_path / "r.csv")
    res.write_results(path, rows)
    back = res.read_results(path)
    text = res.render_markdown(back, [get_method("sup_grid"), get_method("csp")], [0.05], [0],
                               data_root="d", split="test", preset="p", total_cells=2)
    section = text.split("## Location only, the network alone (no place memory): top-1 (%)")[1]
    table = [line for line in section.split("##")[0].splitlines() if line.startswith("|")]
    assert [cells(line)[0] for line in table[2:]] == ["CSP-MC-BLD"]
    assert cells(table[2])[3] == "**27.00**"
    plain = res.render_markdown(back[1:], [get_method("sup_grid")], [0.05], [0], data_root="d",
                                split="test", preset="p", total_cells=1)
    assert "network alone" not in plain
