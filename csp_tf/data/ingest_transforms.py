"""The Beam transforms of the ingest (``csp_tf.data.ingest.build_pipeline`` wires them).

Each DoFn does one step of a row's way from a manifest line to a TFRecord shard or the dead
letter: parse and validate, drop duplicate ids, rank within its class (nested label subsets),
encode, write a shard, write a rejection. Known problems leave as ``REJECTED`` tagged outputs
with the field and the reason (``validation.REASONS``); the small functions at the end are the
keys and routes between the steps.
"""

from __future__ import annotations

import json
import os
import posixpath
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from csp_tf import features as fk
from csp_tf.data import regions, splits, validation
from csp_tf.data.outputs import NAMESPACE, SHARD_SUFFIX
from csp_tf.data.schema import encode_example

REJECTED = "rejected"
UNEXPECTED = "unexpected"
CLASS_COUNTS = "class_counts"


class ParseAndValidateFn(beam.DoFn):
    """Raw rows -> validated records (``validation.validate_row``).

    Outputs:
      * main: a record dict (id, lon, lat, label, features or image_path, raw, source);
      * ``REJECTED``: a dead-letter dict for each row failing a check.
    """

    OUTPUT_TAG_REJECTED = REJECTED

    def __init__(self, headers: Dict[str, Tuple[str, ...]], feature_dim: int,
                 vocabulary: Optional[frozenset]) -> None:
        self._headers = headers
        self._feature_dim = feature_dim
        self._vocabulary = vocabulary
        self._rows_in = Metrics.counter(NAMESPACE, "rows_in")

    def process(self, element: Tuple[str, str, Any]) -> Iterable[Any]:
        fmt, source, payload = element
        self._rows_in.inc()
        raw: Any = payload
        try:
            if fmt in ("csv", "jsonl"):
                raw = validation.decode_line(payload)  # lines arrive as bytes (manifests.py)
            if fmt == "csv":
                raw = validation.parse_csv_line(raw, self._headers[source])
            elif fmt == "jsonl":
                raw = validation.parse_json_line(raw)
            base_dir = posixpath.dirname(source) if "://" in source else os.path.dirname(source)
            record = validation.validate_row(raw, self._feature_dim, self._vocabulary, base_dir)
        except validation.RowError as err:
            yield pvalue.TaggedOutput(REJECTED, validation.rejection(raw, err.field, err.reason,
                                                                     source, err.detail))
            return
        record["raw"] = raw
        record["source"] = source
        yield record


class KeepFirstFn(beam.DoFn):
    """``(id, [records])`` -> the first record in a stable order; the others are rejected.

    The order is (source file, canonical JSON of the raw row), so the kept row does not
    depend on the runner's bundle order.
    """

    OUTPUT_TAG_REJECTED = REJECTED

    def process(self, element: Tuple[str, Iterable[Dict[str, Any]]]) -> Iterable[Any]:
        _, group = element
        group = list(group)
        if len(group) == 1:  # the common case: no need for the (costly) stable order
            yield group[0]
            return
        ordered = sorted(group, key=_stable_row_key)
        yield ordered[0]
        for record in ordered[1:]:
            yield pvalue.TaggedOutput(REJECTED, validation.rejection(
                record["raw"], "id", "duplicate_id", record["source"],
                f"id {record['id']!r} already used by a row of {ordered[0]['source']}"))


class RankWithinClassFn(beam.DoFn):
    """``(label, [train records])`` -> records with ``class_rank`` and ``class_count``.

    Outputs: main, the ranked records; ``CLASS_COUNTS``: one ``(label, n_c)`` per class.
    A class's records are held in memory together (thousands of rows: fine for iNat-sized data).
    """

    OUTPUT_TAG_CLASS_COUNTS = CLASS_COUNTS

    def process(self, element: Tuple[str, Iterable[Dict[str, Any]]]) -> Iterable[Any]:
        label, group = element
        by_id = {record["id"]: record for record in group}
        order = splits.rank_order(by_id)
        for rank, row_id in enumerate(order):
            yield {**by_id[row_id], "class_rank": rank, "class_count": len(order)}
        yield pvalue.TaggedOutput(CLASS_COUNTS, (label, len(order)))


class EncodeFn(beam.DoFn):
    """Records of one split -> serialized tf.Example (side input: the class vocabulary)."""

    def __init__(self, split: str) -> None:
        self._split = split
        self._counter = Metrics.counter(NAMESPACE, f"rows_out.{split}")
        self._index: Optional[Dict[str, int]] = None
        self._vocab_key: Optional[int] = None

    def process(self, record: Dict[str, Any], vocabulary: List[str]) -> Iterable[Tuple[str, bytes]]:
        if self._vocab_key != id(vocabulary):
            self._index = {name: i for i, name in enumerate(vocabulary)}
            self._vocab_key = id(vocabulary)
        label = record["label"]
        example = {
            fk.ID: record["id"], fk.LON: record["lon"], fk.LAT: record["lat"],
            fk.IMAGE_FEATURES: record["features"],
            fk.LABEL: self._index[label] if label is not None else fk.UNLABELED,
            fk.CLASS_RANK: record.get("class_rank", -1),
            fk.CLASS_COUNT: record.get("class_count", 0),
            fk.REGION: record["region"],
            fk.LABEL_SUBSET: record.get("subset") if record.get("subset") is not None else fk.NO_SUBSET,
        }
        self._counter.inc()
        yield record["id"], encode_example(example)


def _key_by_shard(id_and_example: Tuple[str, bytes], num_shards: int) -> Tuple[int, Tuple[str, bytes]]:
    return splits.stable_hash("shard", id_and_example[0]) % num_shards, id_and_example


class WriteShardFn(beam.DoFn):
    """(shard index, [(id, serialized example)]) -> ``part-0000k-of-0000n.tfrecord.gz``, rows in
    ``stable_hash("order", id)`` order. Beam's WriteToTFRecord assigns rows to shards at random,
    so a re-run of the same manifest wrote different files, and a streamed pre-training epoch
    (files in order, a finite shuffle buffer) saw different batches; this writes the same bytes."""

    def __init__(self, split_dir: str, num_shards: int) -> None:
        self._split_dir, self._num_shards = split_dir, num_shards

    def process(self, shard: Tuple[int, Iterable[Optional[Tuple[str, bytes]]]]) -> Iterable[str]:
        import tensorflow as tf

        index, rows = shard
        rows = sorted((r for r in rows if r is not None),
                      key=lambda r: (splits.stable_hash("order", r[0]), r[0]))
        path = FileSystems.join(self._split_dir,
                                f"part-{index:05d}-of-{self._num_shards:05d}{SHARD_SUFFIX}")
        tf.io.gfile.makedirs(self._split_dir)
        with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
            for _, example in rows:
                writer.write(example)
        yield path


class DeadLetterFn(beam.DoFn):
    """Dead-letter dicts -> JSON lines, counting each reason as a Beam metric."""

    def process(self, rejection: Dict[str, Any]) -> Iterable[str]:
        Metrics.counter(NAMESPACE, f"rejected.{rejection['reason']}").inc()
        yield json.dumps(rejection, sort_keys=True)


def assign_split(record: Dict[str, Any], fractions: Sequence[float]) -> Dict[str, Any]:
    """Keeps what the TFRecord needs, adding ``split`` (the manifest's, else a hash of the id),
    ``subset`` (the manifest's label subset, kept for train rows only) and ``region``.

    The raw row is dropped here: after de-duplication no row can be rejected any more, and
    not carrying it halves what the class-rank GroupByKey moves.
    """
    split = splits.assign_split(record["id"], record["label"] is not None, fractions,
                                given=record.get("split"))
    return {"id": record["id"], "lon": record["lon"], "lat": record["lat"],
            "label": record["label"], "features": record["features"], "split": split,
            "subset": record.get("subset") if split == "train" else None,
            "region": regions.region_of(record["lon"], record["lat"])}


class FeatureStatsFn(beam.CombineFn):
    """Per-dimension mean and population std of ``image_features`` over every written row.

    Accumulator ``(n, mean, m2)`` in float64, merged with Chan et al.'s parallel update, so
    neither a large mean nor many rows cancel digits (a raw sum of squares would). The std is
    floored at ``STD_FLOOR`` so a constant dimension never divides by zero downstream.
    """

    def create_accumulator(self):
        return 0, None, None

    def add_input(self, acc, record: Dict[str, Any]):
        x = np.asarray(record["features"], dtype=np.float64)
        return _chan_merge(acc, (1, x, np.zeros_like(x)))

    def merge_accumulators(self, accumulators):
        out = self.create_accumulator()
        for acc in accumulators:
            out = _chan_merge(out, acc)
        return out

    def extract_output(self, acc) -> Dict[str, Any]:
        n, mean, m2 = acc
        if not n:
            return {"count": 0, "mean": None, "std": None, "std_floor": STD_FLOOR}
        std = np.maximum(np.sqrt(m2 / n), STD_FLOOR)
        return {"count": int(n), "mean": [float(v) for v in mean], "std": [float(v) for v in std],
                "std_floor": STD_FLOOR}


STD_FLOOR = 1e-6


def _chan_merge(a, b):
    (na, ma, qa), (nb, mb, qb) = a, b
    if not nb:
        return a
    if not na:
        return nb, np.array(mb, dtype=np.float64), np.array(qb, dtype=np.float64)
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), qa + qb + delta * delta * (na * nb / n)


def unexpected_rejection(bad: Tuple[Any, Tuple[Any, str, Any]]) -> Dict[str, Any]:
    """``with_exception_handling``'s (element, (type, repr, traceback)) -> dead-letter dict."""
    element, (_, message, _) = bad
    fmt, source, payload = element
    return validation.rejection(payload, "<row>", "unexpected_error", source, message)


# ----- small helpers used as Beam callables (module level: picklable by reference) -----------
def _route_images(record: Dict[str, Any], num_partitions: int) -> int:
    return 0 if record["features"] is not None else 1


def _no_backbone(record: Dict[str, Any]) -> Dict[str, Any]:
    return validation.rejection(record["raw"], "image_path", "no_backbone", record["source"],
                                "the row has an image_path but the ingest has no --backbone")


def _key_by_id(record: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    return record["id"], record


def _key_by_label(record: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    return record["label"], record


def _label_of(record: Dict[str, Any]) -> List[str]:
    return [record["label"]] if record["label"] is not None else []


def _split_index(record: Dict[str, Any], num_partitions: int) -> int:
    return fk.SPLITS.index(record["split"])


def _stable_row_key(record: Dict[str, Any]) -> Tuple[str, str]:
    return record["source"], json.dumps(validation.jsonable(record["raw"]), sort_keys=True)


def _stat(_: Any, key: str) -> Tuple[str, int]:
    return key, 1


def _class_stat(label_count: Tuple[str, int]) -> Tuple[str, int]:
    return f"train_class/{label_count[0]}", label_count[1]


def _rejected_stat(rejection: Dict[str, Any]) -> Tuple[str, int]:
    return f"rejected/{rejection['reason']}", 1
