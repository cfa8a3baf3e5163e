"""The ingest's DoFns, called directly (no pipeline): what they emit, and that they use only what
every runner runs the same way. The work itself is tested in test_data_ingest_rows.py, the
pipeline in test_data_ingest.py."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam import pvalue

from csp_tf.data import ingest_rows as rows
from csp_tf.data import ingest_transforms as t
from csp_tf.data.ingest_transforms import ReadAndParseFn, select

DOFNS = [ReadAndParseFn, t.EmbedImagesFn, t.SettleBucketFn, t.RankClassFn, t.VocabularyFn,
         t.WriteBucketFn, t.WriteStatsFn]


@pytest.mark.parametrize("cls", DOFNS, ids=lambda c: c.__name__)
def test_dofns_work_in_process_alone(cls):
    """Beam 2.59's DaskRunner calls only ``process``: no setup or bundle methods."""
    for method in ("setup", "start_bundle", "finish_bundle", "teardown"):
        assert getattr(cls, method) is getattr(beam.DoFn, method), f"{cls.__name__}.{method}"


def test_read_and_parse_emits_bucketed_batches_dead_letters_and_the_row_count(tmp_path):
    path = tmp_path / "m.jsonl"
    good = [{"id": f"g{i}", "lon": 1.0, "lat": 2.0, "features": [1, 2]} for i in range(40)]
    bad = [{"id": "far", "lon": 500, "lat": 2.0, "features": [1, 2]}, {"id": "img", "lon": 1, "lat": 2,
                                                                       "image_path": "x.png"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in good + bad))
    fn = ReadAndParseFn({}, 2, None, 3, False, 8)
    out = list(fn.process(rows.ReadRange("jsonl", str(path))))
    assert not any(isinstance(o, pvalue.TaggedOutput) for o in out)
    batches = list(select_all(out, t.ROWS))
    got = {r["id"]: bucket for bucket, blob in batches for r in rows.unpack(blob)}
    assert got == {f"g{i}": rows.bucket_of(f"g{i}", 3) for i in range(40)}
    dead = [json.loads(line) for _, (kind, part) in select_all(out, t.WRITE) for _, line in part]
    assert sorted(d["reason"] for d in dead) == ["lon_out_of_range", "no_backbone"]
    assert list(select_all(out, t.STATS)) == [(t.STATS_KEY, (t.STATS, {"rows_in": 42}))]


def select_all(triples, kind):
    return (pair for triple in triples for pair in select(triple, kind))
