"""The Beam steps of the ingest (``csp_tf.data.ingest.build_pipeline`` wires them): thin DoFns
around ``csp_tf.data.ingest_rows``, which does the work on batches of rows.

Every element is a batch (a read range's rows of one bucket, a bucket's kept rows, a class's
ids), so Beam's per-element cost is paid per batch, not per row. The steps use only what every
Beam runner runs the same way: ``Create``, single-output ``ParDo`` / ``Map`` / ``FlatMap``
whose ``process`` does all the work (no side inputs, no tagged outputs, no ``setup`` or bundle
methods), ``GroupByKey`` and ``Flatten``. Beam 2.59's ``DaskRunner`` runs nothing else
correctly: it hands a side input to the DoFn as an unresolved placeholder, sends every tagged
output (and so ``Partition`` and ``with_exception_handling``) to every consumer, and never
calls ``setup`` / ``start_bundle`` / ``finish_bundle`` (which Beam's file sinks need). So a step
emits ``(kind, key, value)`` triples and ``select`` picks one kind for the next step.
"""

from __future__ import annotations

import collections
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from csp_tf.data import ingest_rows as rows
from csp_tf.data import validation
from csp_tf.data.outputs import NAMESPACE

# What a step emits: (kind, key, value); ``select(kind)`` turns the triples of one kind into
# the (key, value) pairs a GroupByKey takes.
ROWS, IMAGES, DEAD, STATS, WRITE, RANK, LABELS = "rows", "images", "dead", "stats", "write", "rank", "labels"
VOCAB_KEY = "vocabulary"
# Every grouping key is an int: Beam 2.59's DaskRunner partitions groups by Python's hash(),
# which is salted per process for str, so a str key's values would be split between workers.
STATS_KEY = LABELS_KEY = 0

Triple = Tuple[str, Any, Any]


def select(triple: Triple, kind: str) -> Iterator[Tuple[Any, Any]]:
    if triple[0] == kind:
        yield triple[1], triple[2]


class ReadAndParseFn(beam.DoFn):
    """A read range -> its rows parsed and validated, batched by bucket.

    Emits ``(ROWS, bucket, packed records)`` (``ingest_rows.pack``), ``(IMAGES, None, [records])`` (rows whose features a
    backbone must compute), ``(WRITE, bucket, (DEAD, [rejections]))`` and
    ``(STATS, STATS_KEY, (STATS, {"rows_in": n}))``. A failure to read the file itself (not
    a row) fails the step, whose name says which format (``explain_pipeline_error``).
    """

    def __init__(self, headers: Mapping[str, Sequence[str]], feature_dim: int,
                 vocabulary: Optional[frozenset], num_buckets: int, has_backbone: bool,
                 image_batch: int) -> None:
        self._parser = rows.RowParser(headers, feature_dim, vocabulary)
        self._num_buckets = num_buckets
        self._has_backbone = has_backbone
        self._image_batch = max(1, image_batch)
        self._rows_in = Metrics.counter(NAMESPACE, "rows_in")

    def process(self, part: rows.ReadRange) -> Iterator[Triple]:
        by_bucket: Dict[int, List[rows.Record]] = collections.defaultdict(list)
        images: List[rows.Record] = []
        rejected: List[rows.Rejection] = []
        n = 0
        for payload in rows.read_range(part):
            n += 1
            record, rejection = self._parser.parse(part.fmt, part.path, payload)
            if rejection is not None:
                rejected.append(rejection)
            elif record["features"] is None:
                if self._has_backbone:
                    images.append(record)
                else:
                    rejected.append(rows.dead_letter_line(validation.rejection(
                        self._parser.raw_of(record), "image_path", "no_backbone", record["source"],
                        "the row has an image_path but the ingest has no --backbone")))
            else:
                by_bucket[rows.bucket_of(record["id"], self._num_buckets)].append(record)
        self._rows_in.inc(n)
        for bucket, batch in sorted(by_bucket.items()):
            for chunk in rows.chunks(batch):
                yield ROWS, bucket, rows.pack(chunk)
        for chunk in rows.chunks(images, self._image_batch):
            yield IMAGES, None, chunk
        yield from dead_letter(rejected, self._num_buckets)
        yield STATS, STATS_KEY, (STATS, {"rows_in": n})


def dead_letter(rejected: Sequence[rows.Rejection], num_buckets: int) -> Iterator[Triple]:
    """Rejections -> ``(WRITE, bucket, (DEAD, [...]))``, spread over the buckets by line."""
    by_bucket: Dict[int, List[rows.Rejection]] = collections.defaultdict(list)
    for rejection in rejected:
        by_bucket[rows.dead_letter_bucket(rejection[1], num_buckets)].append(rejection)
    for bucket, batch in sorted(by_bucket.items()):
        yield WRITE, bucket, (DEAD, batch)


class EmbedImagesFn(beam.DoFn):
    """A batch of image rows -> ``(ROWS, bucket, packed records)`` with features from the backbone,
    and dead letters for images that cannot be read or decoded (``backbone.ImageEmbedder``;
    the model loads on the first batch a worker sees)."""

    def __init__(self, spec, num_buckets: int) -> None:
        self._spec = spec
        self._num_buckets = num_buckets
        self._embedder = None

    def process(self, element: Tuple[Any, List[rows.Record]]) -> Iterator[Triple]:
        from csp_tf.data.backbone import ImageEmbedder

        if self._embedder is None:
            self._embedder = ImageEmbedder(self._spec)
        good, rejected = self._embedder.embed(element[1])
        by_bucket: Dict[int, List[rows.Record]] = collections.defaultdict(list)
        for record in good:
            by_bucket[rows.bucket_of(record["id"], self._num_buckets)].append(record)
        for bucket, batch in sorted(by_bucket.items()):
            yield ROWS, bucket, rows.pack(batch)
        yield from dead_letter(rejected, self._num_buckets)


class SettleBucketFn(beam.DoFn):
    """``(bucket, [packed records, ...])`` -> the bucket's kept rows, its train ids by class and its
    labels (``ingest_rows.settle_bucket``); duplicates go to the dead letter.

    Emits ``(WRITE, bucket, (ROWS, packed records))``, ``(RANK, class key, (label, [ids]))``,
    ``(LABELS, LABELS_KEY, [labels])`` (when the vocabulary is collected) and dead letters.
    """

    def __init__(self, headers: Mapping[str, Sequence[str]], fractions: Sequence[float],
                 check_duplicate_ids: bool, num_buckets: int, collect_labels: bool) -> None:
        self._parser = rows.RowParser(headers, 1, None)  # only re-reads raw rows
        self._fractions = tuple(fractions)
        self._check = check_duplicate_ids
        self._num_buckets = num_buckets
        self._collect_labels = collect_labels

    def process(self, element: Tuple[int, Iterable[bytes]]) -> Iterator[Triple]:
        bucket, batches = element
        kept, rejected = rows.settle_bucket((r for batch in batches for r in rows.unpack(batch)),
                                            self._fractions, self._check, self._parser.raw_of)
        for chunk in rows.chunks(kept):
            yield WRITE, bucket, (ROWS, rows.pack(chunk))
        for label, ids in sorted(rows.rank_keys(kept).items()):
            yield RANK, rows.class_key(label), (label, ids)
        if self._collect_labels:
            yield LABELS, LABELS_KEY, sorted({r["label"] for r in kept if r["label"] is not None})
        yield from dead_letter(rejected, self._num_buckets)


class RankClassFn(beam.DoFn):
    """``(class key, [(label, [ids]), ...])`` -> each train row's (class_rank, class_count), sent
    to its bucket as ``(WRITE, bucket, ("ranks", [(id, rank, count)]))``, and the class's count.
    (Labels whose keys collide share a group and are ranked apart.)"""

    def __init__(self, num_buckets: int) -> None:
        self._num_buckets = num_buckets

    def process(self, element: Tuple[int, Iterable[Tuple[str, List[str]]]]) -> Iterator[Triple]:
        by_label: Dict[str, List[str]] = collections.defaultdict(list)
        for label, ids in element[1]:
            by_label[label].extend(ids)
        for label, ids in sorted(by_label.items()):
            count, ranked = rows.rank_class(ids)
            by_bucket: Dict[int, List[Tuple[str, int, int]]] = collections.defaultdict(list)
            for row_id, rank in ranked:
                by_bucket[rows.bucket_of(row_id, self._num_buckets)].append((row_id, rank, count))
            for bucket, batch in sorted(by_bucket.items()):
                for chunk in rows.chunks(batch):
                    yield WRITE, bucket, ("ranks", chunk)
            yield STATS, STATS_KEY, (STATS, {f"train_class/{label}": count})


class VocabularyFn(beam.DoFn):
    """``(LABELS_KEY, [[labels], ...])`` -> the class vocabulary (the given one, else the sorted
    labels of the kept rows), sent to every bucket's writer and to the statistics."""

    def __init__(self, given: Optional[Sequence[str]], num_buckets: int) -> None:
        self._given = list(given) if given is not None else None
        self._num_buckets = num_buckets

    def process(self, element: Tuple[str, Iterable[List[str]]]) -> Iterator[Triple]:
        names = self._given if self._given is not None else sorted(
            {label for labels in element[1] for label in labels})
        for bucket in range(self._num_buckets):  # every shard is written, empty ones too
            yield WRITE, bucket, (VOCAB_KEY, names)
        yield STATS, STATS_KEY, (VOCAB_KEY, names)


class WriteBucketFn(beam.DoFn):
    """``(bucket, [(kind, value), ...])`` -> shard ``bucket`` of every split and its dead-letter
    file (``ingest_rows.write_bucket``); emits the bucket's statistics."""

    def __init__(self, out_dir: str, num_buckets: int) -> None:
        self._out_dir = out_dir
        self._num_buckets = num_buckets

    def process(self, element: Tuple[int, Iterable[Tuple[str, Any]]]) -> Iterator[Triple]:
        bucket, parts = element
        kept: List[rows.Record] = []
        ranks: Dict[str, Tuple[int, int]] = {}
        rejected: List[rows.Rejection] = []
        vocabulary: List[str] = []
        for kind, value in parts:
            if kind == ROWS:
                kept.extend(rows.unpack(value))
            elif kind == "ranks":
                ranks.update((row_id, (rank, count)) for row_id, rank, count in value)
            elif kind == DEAD:
                rejected.extend(value)
            elif kind == VOCAB_KEY:
                vocabulary = value
        stats = rows.write_bucket(self._out_dir, bucket, self._num_buckets, kept, ranks,
                                  vocabulary, rejected)
        for key, n in stats["counts"].items():
            if n:
                name = key.replace("/", ".")  # rows_out.<split>, rejected.<reason>
                Metrics.counter(NAMESPACE, name).inc(n)
        yield STATS, STATS_KEY, ("bucket", stats)


class WriteStatsFn(beam.DoFn):
    """``(STATS_KEY, [(kind, value), ...])`` -> the ``_ingest_stats`` files (``write_stats``)."""

    def __init__(self, out_dir: str) -> None:
        self._out_dir = out_dir

    def process(self, element: Tuple[str, Iterable[Tuple[str, Any]]]) -> Iterator[str]:
        counts: Dict[str, int] = {}
        buckets: List[Dict[str, Any]] = []
        vocabulary: List[str] = []
        for kind, value in element[1]:
            if kind == STATS:
                for key, n in value.items():
                    counts[key] = counts.get(key, 0) + n
            elif kind == "bucket":
                buckets.append(value)
            elif kind == VOCAB_KEY:
                vocabulary = value
        rows.write_stats(self._out_dir, buckets, counts, vocabulary)
        yield self._out_dir
