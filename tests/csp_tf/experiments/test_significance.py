"""Paired significance against a location baseline (``csp-tf compare``)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from csp_tf.experiments.significance import (binomial_two_sided, compare_cells, find_cells,
                                             paired_test, render, top1_correct)


def test_binomial_two_sided_matches_the_exact_values():
    assert binomial_two_sided(0, 0) == 1.0
    assert binomial_two_sided(3, 10) == pytest.approx(0.34375)  # 2 * 176 / 1024
    assert binomial_two_sided(7, 10) == binomial_two_sided(3, 10)
    assert binomial_two_sided(0, 10) == pytest.approx(2 / 1024)
    assert binomial_two_sided(5, 10) == 1.0
    assert 0 < binomial_two_sided(400, 1100) < 1e-15  # large n: no float overflow


def test_paired_test_counts_discordant_rows_and_calls_the_verdict():
    n = 10_000
    b = np.zeros(n, bool)
    b[:9000] = True
    a = b.copy()
    a[9000:9150] = True  # the model also gets 150 more rows right
    a[:20] = False       # ... and loses 20
    t = paired_test(a, b)
    assert (t.a_only, t.b_only, t.n) == (150, 20, n)
    assert t.diff == pytest.approx(1.30) and t.ci95[0] < 1.30 < t.ci95[1]
    assert t.top1_a == pytest.approx(91.30) and t.top1_b == pytest.approx(90.0)
    assert t.p_value < 1e-20 and t.verdict == "above"
    assert paired_test(b, a).verdict == "below"
    flip = b.copy()
    flip[9000:9010], flip[:12] = True, False  # +10 / -12: indistinguishable
    assert paired_test(flip, b).verdict == "level"
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_test(a[:5], b)


def test_top1_correct_counts_ties_against_the_true_class():
    scores = np.array([[0.6, 0.4], [0.5, 0.5], [0.1, 0.9]])
    assert top1_correct(scores, np.array([0, 0, 0])).tolist() == [True, False, False]


def test_find_cells_filters_and_refuses_a_non_experiment_dir(tmp_path):
    for method, ratio, seed in (("sup_grid", "0.05", 0), ("csp", "0.05", 1), ("csp", "1", 0),
                                ("img_only", "0.05", 0)):
        d = tmp_path / "run" / "finetune" / method / f"ratio{ratio}" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "model.keras").write_text("")
    (tmp_path / "run" / "finetune" / "csp" / "ratio0.2" / "seed0").mkdir(parents=True)  # unfinished
    cells = find_cells([str(tmp_path / "run")])
    assert sorted((c.method, c.ratio, c.seed) for c in cells) == [
        ("csp", 0.05, 1), ("csp", 1.0, 0), ("sup_grid", 0.05, 0)]
    assert [c.method for c in find_cells([str(tmp_path / "run")], ["csp"], [1.0])] == ["csp"]
    with pytest.raises(FileNotFoundError, match="no finetune/"):
        find_cells([str(tmp_path)])
    # img_only's location head is untrained: never compared, and asking for it is an error
    with pytest.raises(ValueError, match="img_only: image-only"):
        find_cells([str(tmp_path / "run")], ["img_only"])


def test_compare_matches_the_experiment_and_the_baseline_rows(experiment_run, tiny_world):
    """The model's top-1 here is the experiment's location top-1, the kNN's is its baseline
    cell's (same rows, same fit), so the paired test compares exactly what the tables show."""
    from csp_tf.experiments.methods import parse_methods, with_baselines
    from csp_tf.experiments.protocol import Protocol, run_protocol

    out = experiment_run["out"]
    cells = find_cells([out])
    assert {c.method for c in cells} == {"sup_grid", "csp"}
    rows = compare_cells(tiny_world["data_root"], cells, echo=lambda _: None)
    by_method = {r["method"]: r for r in rows}
    for r in experiment_run["rows"]:
        assert by_method[r["method"]]["top1_a"] == pytest.approx(float(r["location_top1"]))
    p = experiment_run["protocol"]
    knn = Protocol(data_root=p.data_root, out_dir=os.path.join(out, "..", "knn_only"),
                   base_config=p.base_config, methods=[m for m in with_baselines(
                       parse_methods("sup_grid")) if m.name == "knn_sphere"],
                   ratios=p.ratios, seeds=p.seeds, config_name="tiny")
    (knn_row,) = run_protocol(knn, echo=lambda _: None)
    assert all(r["top1_b"] == pytest.approx(float(knn_row["top1"])) for r in rows)
    text = render(rows)
    assert len({r["recipe"] for r in rows}) == 2  # the two methods differ in more than the seed
    assert "| sup_grid | 0.5 |" in text and "McNemar" in text
