"""The ingest's Beam transforms, called directly (no pipeline): what each step keeps, rejects
and counts. The end-to-end behaviour is in test_data_ingest.py."""

from __future__ import annotations

import gzip
import os

import numpy as np
from apache_beam import pvalue

from csp_tf.data.ingest_transforms import (CLASS_COUNTS, REJECTED, FeatureStatsFn, KeepFirstFn,
                                           RankWithinClassFn, WriteShardFn, assign_split)


def _record(row_id, source="a.csv", label="bee", **raw):
    return {"id": row_id, "lon": 10.0, "lat": 50.0, "label": label, "features": [0.5, 1.5],
            "source": source, "raw": {"id": row_id, **raw}}


def test_keep_first_keeps_one_row_per_id_whatever_the_arrival_order():
    rows = [_record("x", "b.csv", n=2), _record("x", "a.csv", n=1), _record("x", "a.csv", n=3)]
    for order in (rows, rows[::-1], rows[1:] + rows[:1]):
        out = list(KeepFirstFn().process(("x", order)))
        kept = [o for o in out if not isinstance(o, pvalue.TaggedOutput)]
        rejected = [o for o in out if isinstance(o, pvalue.TaggedOutput)]
        assert kept == [rows[1]]  # smallest (source, raw JSON)
        assert len(rejected) == 2 and {r.tag for r in rejected} == {REJECTED}
        assert all(r.value["reason"] == "duplicate_id" and r.value["field"] == "id" for r in rejected)


def test_rank_within_class_gives_every_row_a_rank_and_counts_the_class():
    group = [_record(f"r{i}") for i in range(5)]
    out = list(RankWithinClassFn().process(("bee", group)))
    ranked = [o for o in out if not isinstance(o, pvalue.TaggedOutput)]
    counts = [o.value for o in out if isinstance(o, pvalue.TaggedOutput) and o.tag == CLASS_COUNTS]
    assert sorted(r["class_rank"] for r in ranked) == list(range(5))
    assert {r["class_count"] for r in ranked} == {5} and counts == [("bee", 5)]
    again = list(RankWithinClassFn().process(("bee", group[::-1])))
    assert {r["id"]: r["class_rank"] for r in ranked} == \
        {r["id"]: r["class_rank"] for r in again if not isinstance(r, pvalue.TaggedOutput)}


def test_assign_split_drops_the_raw_row_and_keeps_a_subset_on_train_rows_only():
    rec = dict(_record("x"), split="train", subset=3)
    out = assign_split(rec, (0.7, 0.15, 0.15))
    assert out["split"] == "train" and out["subset"] == 3 and "raw" not in out
    assert assign_split(dict(rec, split="val"), (0.7, 0.15, 0.15))["subset"] is None


def test_write_shard_writes_the_same_bytes_whatever_the_row_order(tmp_path):
    rows = [(f"id{i}", f"example-{i}".encode()) for i in range(20)]
    paths = []
    for n, order in enumerate((rows, rows[::-1])):
        split_dir = str(tmp_path / f"run{n}")
        (path,) = WriteShardFn(split_dir, 4).process((1, order + [None]))  # an empty shard key
        assert os.path.basename(path) == "part-00001-of-00004.tfrecord.gz"
        paths.append(path)
    with gzip.open(paths[0], "rb") as a, gzip.open(paths[1], "rb") as b:
        assert a.read() == b.read()


def test_feature_stats_combine_is_stable_and_floors_constant_dimensions():
    rng = np.random.default_rng(3)
    x = np.stack([1e6 + rng.normal(0, 1e-2, 5000), np.full(5000, 3.0), rng.normal(0, 1, 5000)], 1)
    x = x.astype(np.float32)
    fn = FeatureStatsFn()
    parts = []
    for chunk in np.array_split(x, 7):  # several bundles merged, as a runner would
        acc = fn.create_accumulator()
        for row in chunk:
            acc = fn.add_input(acc, {"features": row})
        parts.append(acc)
    out = fn.extract_output(fn.merge_accumulators([fn.create_accumulator()] + parts))
    x64 = x.astype(np.float64)
    assert out["count"] == 5000
    np.testing.assert_allclose(out["mean"], x64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(out["std"][0], x64[:, 0].std(), rtol=1e-6)
    assert out["std"][1] == 1e-6  # a constant dimension: floored, never 0
    empty = fn.extract_output(fn.create_accumulator())
    assert empty["count"] == 0 and empty["mean"] is None


