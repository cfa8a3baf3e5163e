"""The generated world's manifest files: the same rows in every format, and the injected bad
rows (one kind per rejection reason the ingest must name)."""

from __future__ import annotations

import numpy as np
import pytest

from csp_tf.data.world import generate_world

from data_test_helpers import read_manifest_rows


def test_formats_hold_the_same_rows(tmp_path):
    rows = {fmt: read_manifest_rows(generate_world(str(tmp_path / fmt), "tiny", seed=5,
                                                   manifest_format=fmt)["manifest"])
            for fmt in ("csv", "jsonl", "parquet")}
    assert set(rows["csv"]) == set(rows["jsonl"]) == set(rows["parquet"])
    for row_id, row in rows["csv"].items():
        for fmt in ("jsonl", "parquet"):
            other = rows[fmt][row_id]
            assert other["label"] == row["label"]
            np.testing.assert_array_equal(other["features"], row["features"])
            assert other["lon"] == pytest.approx(row["lon"]) and other["lat"] == pytest.approx(row["lat"])


def test_injected_bad_rows(tmp_path):
    csv_world = generate_world(str(tmp_path / "c"), "tiny", inject_bad_rows=True)
    parquet_world = generate_world(str(tmp_path / "p"), "tiny", manifest_format="parquet",
                                   inject_bad_rows=True)
    assert set(csv_world["bad_rows"]) == {
        "lon_out_of_range", "lat_out_of_range", "not_finite", "feature_width", "unknown_label",
        "missing_value", "duplicate_id", "not_a_number", "bad_features", "unparseable_row"}
    assert set(parquet_world["bad_rows"]) == set(csv_world["bad_rows"]) - {
        "not_a_number", "bad_features", "unparseable_row"}  # typed columns cannot hold those
    assert all(n == 2 for n in csv_world["bad_rows"].values())
    with open(csv_world["manifest"]) as f:
        assert sum(1 for _ in f) - 1 == csv_world["rows"] + sum(csv_world["bad_rows"].values())
