"""The ingest's steps on batches of rows (``csp_tf.data.ingest_rows``), called directly: reading
ranges, settling duplicates, ranks, the shards and statistics a bucket writes. The end-to-end
behaviour is in test_data_ingest.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from csp_tf import features as fk
from csp_tf.data import ingest_rows as rows
from csp_tf.data.schema import decode_example


def _record(row_id, source="a.csv", label="bee", n=0):
    return {"id": row_id, "lon": 10.0, "lat": 50.0, "label": label,
            "features": np.asarray([0.5, 1.5], np.float32), "split": None, "subset": None,
            "source": source, "fmt": "jsonl",
            "payload": json.dumps({"id": row_id, "n": n}).encode()}


def _raw_of(record):
    return json.loads(record["payload"])


def test_settle_keeps_the_first_copy_of_an_id_whatever_the_arrival_order():
    copies = [_record("x", "b.csv", n=2), _record("x", "a.csv", n=1), _record("x", "a.csv", n=3)]
    for order in (copies, copies[::-1], copies[1:] + copies[:1]):
        kept, rejected = rows.settle_bucket(order + [_record("y")], (0.7, 0.15, 0.15), True, _raw_of)
        assert sorted(r["id"] for r in kept) == ["x", "y"]
        assert [r for r in kept if r["id"] == "x"][0] == rows.assign_split(copies[1], (0.7, 0.15, 0.15))
        dead = [json.loads(line) for _, line in rejected]
        assert [r for r, _ in rejected] == ["duplicate_id"] * 2
        assert sorted(d["row"]["n"] for d in dead) == [2, 3] and {d["field"] for d in dead} == {"id"}
    kept, rejected = rows.settle_bucket(copies, (0.7, 0.15, 0.15), False, _raw_of)
    assert len(kept) == 3 and not rejected  # --keep-duplicate-ids


def test_assign_split_drops_the_payload_and_keeps_a_subset_on_train_rows_only():
    rec = dict(_record("x"), split="train", subset=0.3)
    out = rows.assign_split(rec, (0.7, 0.15, 0.15))
    assert out["split"] == "train" and out["subset"] == 0.3 and "payload" not in out
    assert rows.assign_split(dict(rec, split="val"), (0.7, 0.15, 0.15))["subset"] is None


def test_rank_class_is_a_permutation_independent_of_the_order():
    ids = [f"r{i}" for i in range(50)]
    count, ranked = rows.rank_class(ids)
    first = dict(ranked)
    assert count == 50 and sorted(first.values()) == list(range(50))
    assert dict(rows.rank_class(ids[::-1])[1]) == first


def _kept(n, split="train"):
    out = []
    for i in range(n):
        r = rows.assign_split(dict(_record(f"id{i}", label="bee" if i % 2 else "ant"), split=split),
                              (0.7, 0.15, 0.15))
        r["features"] = np.asarray([i, -i], np.float32)
        out.append(r)
    return out


def test_write_bucket_writes_the_same_bytes_whatever_the_row_order(tmp_path):
    kept = _kept(30) + _kept(5, "pretrain")
    ranks = {r["id"]: (i, 30) for i, r in enumerate(kept[:30])}
    dead = [rows.dead_letter_line({"reason": "not_finite", "row": i}) for i in range(4)]
    outs = []
    for n, order in enumerate((kept, kept[::-1])):
        out = str(tmp_path / f"run{n}")
        stats = rows.write_bucket(out, 1, 3, order, ranks, ["ant", "bee"], dead[::1 - 2 * n])
        outs.append(out)
        assert stats["counts"] == {"rows_out/pretrain": 5, "rows_out/train": 30, "rows_out/val": 0,
                                   "rows_out/test": 0, "rejected/not_finite": 4}
    for rel in [f"{s}/part-00001-of-00003.tfrecord.gz" for s in fk.SPLITS] + \
               ["dead_letter/rejected-00001-of-00003.jsonl"]:
        with open(os.path.join(outs[0], rel), "rb") as a, open(os.path.join(outs[1], rel), "rb") as b:
            assert a.read() == b.read(), rel
    import tensorflow as tf

    path = os.path.join(outs[0], "train", "part-00001-of-00003.tfrecord.gz")
    train = [decode_example(r.numpy(), 2) for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert sorted(t["class_rank"] for t in train) == list(range(30))  # ranks and labels in place
    assert {t["class_count"] for t in train} == {30} and {t["label"] for t in train} == {0, 1}


def test_feature_moments_merge_is_stable_and_the_std_is_floored():
    rng = np.random.default_rng(3)
    x = np.stack([1e6 + rng.normal(0, 1e-2, 5000), np.full(5000, 3.0), rng.normal(0, 1, 5000)], 1)
    x = x.astype(np.float32)
    acc = (0, None, None)
    for chunk in np.array_split(x, 7):  # several buckets merged, as the ingest does
        acc = rows.merge_moments(acc, rows.feature_moments(list(chunk)))
    out = rows.feature_stats(rows.merge_moments(acc, rows.feature_moments([])))
    x64 = x.astype(np.float64)
    assert out["count"] == 5000
    np.testing.assert_allclose(out["mean"], x64.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(out["std"][0], x64[:, 0].std(), rtol=1e-6)
    assert out["std"][1] == 1e-6  # a constant dimension: floored, never 0
    empty = rows.feature_stats(rows.feature_moments([]))
    assert empty["count"] == 0 and empty["mean"] is None


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_ranges_of_a_text_file_read_every_line_once(tmp_path, newline):
    lines = [f"r{i},{'x' * (i % 13)}".encode() for i in range(300)]
    body = newline.join([b"id,pad"] + lines[:100] + [b"", b"  "] + lines[100:]) + newline
    path = tmp_path / "m.csv"
    path.write_bytes(body)
    for range_bytes in (1, 7, 64, 1000, len(body)):  # cuts mid-line, at newlines, none
        parts = rows.plan_ranges("csv", str(path), len(body), range_bytes)
        got = [line for part in parts for line in rows.read_range(part)]
        assert got == lines, range_bytes  # header and blank lines skipped, each line once


def test_pack_round_trips_records_and_stacks_the_features():
    kept = _kept(5)
    blob = rows.pack(kept)
    back = rows.unpack(blob)
    assert [r["id"] for r in back] == [r["id"] for r in kept]
    for a, b in zip(kept, back):
        np.testing.assert_array_equal(a.pop("features"), b.pop("features"))
        assert a == b
    assert rows.unpack(rows.pack([])) == []
