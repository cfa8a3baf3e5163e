"""Accuracy by label count: the bins partition the evaluation rows and average back to top-1."""

from __future__ import annotations

import numpy as np
import pytest

from csp_tf.experiments.analysis import accuracy_by_label_count, to_markdown


def test_bins_average_back_to_the_cell_top1(experiment_run):
    out = experiment_run["out"]
    result = accuracy_by_label_count(out, ["sup_grid", "csp"], 0.5)
    rows = {r["method"]: r for r in experiment_run["rows"]}
    counts = np.asarray(result["rows_per_bin"], float)
    assert counts.sum() == rows["csp"]["count"]
    for name in ("sup_grid", "csp"):
        means = np.nan_to_num(np.asarray(result["methods"][name]["mean"]))
        assert (means * counts).sum() / counts.sum() == pytest.approx(rows[name]["top1"], abs=1e-3)
    table = to_markdown(result).splitlines()
    head = [c.strip() for c in table[0].strip("|").split("|")]
    assert head[:2] == ["Method", "<=2 labels"] and len(table) == 5
