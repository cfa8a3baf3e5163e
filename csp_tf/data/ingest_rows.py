"""The ingest's work on rows, in batches, without Beam: read a byte range of a manifest, parse and
validate its rows, settle a bucket (drop duplicate ids, assign splits), rank a class, write a
bucket's shards and dead letter, sum the statistics.

``csp_tf.data.ingest_transforms`` wraps each step in a DoFn and ``csp_tf.data.ingest`` wires
them; ``benchmarks/ingest_limit.py`` calls the same functions in one loop (the ingest's limit).
Everything that moves between steps is a batch: a range's rows for one bucket, a bucket's kept
rows, a class's rank keys. A bucket is ``stable_hash("shard", id) % num_shards``: every copy of an
id lands in the same bucket, and bucket k is shard k of every split, so one grouping by bucket
both removes duplicate ids and gathers what each shard file holds.

Nothing here depends on the order rows arrive in: duplicates are kept by a stable key, shard
rows are sorted by ``stable_hash("order", id)``, dead-letter lines are sorted, and the feature
statistics are merged in bucket order. So any runner, worker count or bundle split writes the
same bytes (shards, dead letter, statistics).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import posixpath
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from csp_tf import features as fk
from csp_tf.data import regions, splits, validation
from csp_tf.data.outputs import SHARD_SUFFIX, STATS_DIR
from csp_tf.data.schema import encode_example
from csp_tf.data.tfrecords import write_gzip_tfrecords

# Rows per element handed between steps (keeps every element far below any runner's limits).
CHUNK_ROWS = 8192
# Without --num-shards: one shard per this many bytes of manifest.
AUTO_SHARD_BYTES = 64 << 20
MAX_AUTO_SHARDS = 1024

Record = Dict[str, Any]
Rejection = Tuple[str, str]  # (reason, the dead-letter JSON line)


# ----- reading ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReadRange:
    """A part of one manifest file: bytes ``[start, end)`` of a text file (the lines that start
    there; ``end`` None: to the end), or row groups ``[start, end)`` of a Parquet file."""

    fmt: str
    path: str
    start: int = 0
    end: Optional[int] = None


def plan_ranges(fmt: str, path: str, size: int, range_bytes: int) -> List[ReadRange]:
    """The ranges one manifest file is read in: ``range_bytes`` pieces of an uncompressed text
    file (so one big manifest spreads over every worker), a gzip file whole, a Parquet file
    by row groups of about ``range_bytes``."""
    if fmt == "parquet":
        return _parquet_ranges(path, range_bytes)
    if path.lower().endswith(".gz") or size <= range_bytes:
        return [ReadRange(fmt, path)]
    return [ReadRange(fmt, path, s, min(s + range_bytes, size)) for s in range(0, size, range_bytes)]


def _parquet_ranges(path: str, range_bytes: int) -> List[ReadRange]:
    import pyarrow.parquet as pq
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        meta = pq.ParquetFile(f).metadata
    out, start, acc = [], 0, 0
    for i in range(meta.num_row_groups):
        acc += meta.row_group(i).total_byte_size
        if acc >= range_bytes:
            out.append(ReadRange("parquet", path, start, i + 1))
            start, acc = i + 1, 0
    if start < meta.num_row_groups or not out:
        out.append(ReadRange("parquet", path, start, meta.num_row_groups))
    return out


def read_range(part: ReadRange) -> Iterator[Any]:
    """The payloads of a range: text lines as bytes (newline stripped; blank lines and a CSV
    header skipped), or Parquet row dicts."""
    if part.fmt == "parquet":
        yield from _parquet_rows(part)
        return
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(part.path) as f:  # compression from the extension (.gz)
        position = part.start
        if part.start > 0:  # the line running into this range belongs to the one before
            f.seek(part.start - 1)
            position += len(f.readline()) - 1
        elif part.fmt == "csv":
            position += len(f.readline())  # the header (parsed before the pipeline)
        while part.end is None or position < part.end:
            line = f.readline()
            if not line:
                break
            position += len(line)
            if line.strip():
                yield line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line


def _parquet_rows(part: ReadRange) -> Iterator[Dict[str, Any]]:
    import pyarrow.parquet as pq
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(part.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        parquet = pq.ParquetFile(f)
        end = parquet.metadata.num_row_groups if part.end is None else part.end
        for group in range(part.start, end):
            columns = parquet.read_row_group(group).to_pydict()
            names = list(columns)
            for values in zip(*(columns[n] for n in names)):
                yield dict(zip(names, values))


# ----- parsing and validation -------------------------------------------------------------------
class RowParser:
    """Payload -> validated record or rejection (``validation``), with what every row of a run
    shares: the CSV headers, F, the vocabulary. A record keeps its payload (compact bytes for
    text rows) so a duplicate or an image failure can still dead-letter the raw row."""

    def __init__(self, headers: Mapping[str, Sequence[str]], feature_dim: int,
                 vocabulary: Optional[frozenset]) -> None:
        self._headers = dict(headers)
        self._feature_dim = feature_dim
        self._vocabulary = vocabulary
        self._base_dirs: Dict[str, str] = {}

    def raw(self, fmt: str, source: str, payload: Any) -> Any:
        """The raw row of a payload as the dead letter shows it (the payload if it does not parse)."""
        raw: Any = payload
        if fmt in ("csv", "jsonl"):
            raw = validation.decode_line(payload)  # lines arrive as bytes
        if fmt == "csv":
            raw = validation.parse_csv_line(raw, self._headers[source])
        elif fmt == "jsonl":
            raw = validation.parse_json_line(raw)
        return raw

    def raw_of(self, record: Record) -> Any:
        if "raw" in record:
            return record["raw"]
        try:
            return self.raw(record["fmt"], record["source"], record["payload"])
        except validation.RowError:  # pragma: no cover - it parsed once already
            return record["payload"]

    def parse(self, fmt: str, source: str, payload: Any) -> Tuple[Optional[Record], Optional[Rejection]]:
        """(record, None) for a valid row, (None, rejection) otherwise; an unexpected exception
        is this row's ``unexpected_error``, never the run's."""
        raw: Any = payload
        try:
            try:
                raw = self.raw(fmt, source, payload)
                record = validation.validate_row(raw, self._feature_dim, self._vocabulary,
                                                 self._base_dir(source))
            except validation.RowError as err:
                return None, dead_letter_line(validation.rejection(raw, err.field, err.reason,
                                                                   source, err.detail))
        except Exception as exc:  # noqa: BLE001 - a bug on one odd row must not stop the job
            return None, dead_letter_line(validation.rejection(
                payload, "<row>", "unexpected_error", source, repr(exc)))
        record["fmt"], record["source"], record["payload"] = fmt, source, payload
        if record["features"] is None:
            record["raw"] = raw  # image rows: rejected later only with their raw row
        return record, None

    def _base_dir(self, source: str) -> str:
        base = self._base_dirs.get(source)
        if base is None:
            base = posixpath.dirname(source) if "://" in source else os.path.dirname(source)
            self._base_dirs[source] = base
        return base


def dead_letter_line(rejection: Dict[str, Any]) -> Rejection:
    return rejection["reason"], json.dumps(rejection, sort_keys=True)


def bucket_of(row_id: str, num_buckets: int) -> int:
    """The bucket (and shard index) of an id."""
    return splits.stable_hash("shard", row_id) % num_buckets


def class_key(label: str) -> int:
    """An int key of a class label (grouping keys are ints: see ``ingest_transforms``)."""
    return splits.stable_hash("class", label) >> 1


def dead_letter_bucket(line: str, num_buckets: int) -> int:
    return splits.stable_hash("dead", line) % num_buckets


def chunks(items: Sequence[Any], size: int = CHUNK_ROWS) -> Iterator[List[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


# ----- moving records between steps: columns, pickled once -----------------------------------------
def pack(records: Sequence[Record]) -> bytes:
    """Records -> one pickled column table; the feature vectors as one float32 matrix.

    A runner's coder walks a list of dicts field by field and pickles each small array on its
    own (tens of microseconds a row); a column table is a few large objects."""
    keys = list(records[0]) if records else []
    columns: Dict[str, Any] = {k: [r.get(k) for r in records] for k in keys}
    features = columns.get("features")
    if features and all(isinstance(f, np.ndarray) for f in features) and len({f.shape for f in features}) == 1:
        columns["features"] = np.stack(features)
    return pickle.dumps(columns, protocol=pickle.HIGHEST_PROTOCOL)


def unpack(blob: bytes) -> List[Record]:
    """``pack``'s inverse (feature vectors come back as rows of one matrix)."""
    columns: Dict[str, Any] = pickle.loads(blob)
    keys = list(columns)
    return [dict(zip(keys, values)) for values in zip(*(columns[k] for k in keys))]


# ----- settling a bucket: duplicates, splits, regions --------------------------------------------
def settle_bucket(records: Iterable[Record], fractions: Sequence[float], check_duplicate_ids: bool,
                  raw_of) -> Tuple[List[Record], List[Rejection]]:
    """A bucket's records -> (kept records with split, subset and region, duplicate rejections).

    Of the rows sharing an id the first in a stable order (source file, canonical JSON of the raw
    row) is kept, whatever order they arrived in; the kept records drop the payload.
    """
    by_id: Dict[str, List[Record]] = {}
    for record in records:
        by_id.setdefault(record["id"], []).append(record)
    kept: List[Record] = []
    rejected: List[Rejection] = []
    for row_id, group in by_id.items():
        if len(group) > 1 and check_duplicate_ids:
            keyed = sorted((((r["source"], json.dumps(validation.jsonable(raw_of(r)), sort_keys=True)), i), r)
                           for i, r in enumerate(group))
            first = keyed[0][1]
            for _, record in keyed[1:]:
                rejected.append(dead_letter_line(validation.rejection(
                    raw_of(record), "id", "duplicate_id", record["source"],
                    f"id {row_id!r} already used by a row of {first['source']}")))
            group = [first]
        kept.extend(assign_split(r, fractions) for r in group)
    return kept, rejected


def assign_split(record: Record, fractions: Sequence[float]) -> Record:
    """Keeps what the TFRecord needs, adding ``split`` (the manifest's, else a hash of the id),
    ``subset`` (the manifest's label subset, kept for train rows only) and ``region``."""
    split = splits.assign_split(record["id"], record["label"] is not None, fractions,
                                given=record.get("split"))
    return {"id": record["id"], "lon": record["lon"], "lat": record["lat"],
            "label": record["label"], "features": record["features"], "split": split,
            "subset": record.get("subset") if split == "train" else None,
            "region": regions.region_of(record["lon"], record["lat"])}


def rank_keys(kept: Iterable[Record]) -> Dict[str, List[str]]:
    """{label: [ids]} of a bucket's train rows (their class ranks need every bucket's ids)."""
    out: Dict[str, List[str]] = {}
    for record in kept:
        if record["split"] == "train":
            out.setdefault(record["label"], []).append(record["id"])
    return out


def rank_class(ids: Iterable[str]) -> Tuple[int, Iterator[Tuple[str, int]]]:
    """A class's train ids -> (n_c, (id, class_rank) in rank order) (``splits.rank_order``)."""
    order = splits.rank_order(ids)
    return len(order), ((row_id, rank) for rank, row_id in enumerate(order))


# ----- writing a bucket ---------------------------------------------------------------------------
def write_bucket(out_dir: str, bucket: int, num_buckets: int, kept: Sequence[Record],
                 ranks: Mapping[str, Tuple[int, int]], vocabulary: Sequence[str],
                 rejected: Sequence[Rejection]) -> Dict[str, Any]:
    """Writes shard ``bucket`` of every split and its dead-letter file; returns the bucket's
    statistics: ``counts`` ({"rows_out/<split>": n, "rejected/<reason>": n}) and ``features``
    (``feature_moments`` of the written rows, in file order)."""
    index = {name: i for i, name in enumerate(vocabulary)}
    by_split: Dict[str, List[Record]] = {s: [] for s in fk.SPLITS}
    for record in kept:
        by_split[record["split"]].append(record)
    counts: Dict[str, int] = {}
    written: List[np.ndarray] = []
    name = f"{bucket:05d}-of-{num_buckets:05d}"
    for split in fk.SPLITS:
        rows = sorted(by_split[split], key=lambda r: (splits.stable_hash("order", r["id"]), r["id"]))
        split_dir = _join(out_dir, split)
        _makedirs(split_dir)
        write_gzip_tfrecords(_join(split_dir, f"part-{name}{SHARD_SUFFIX}"),
                             (encode_record(r, index, ranks) for r in rows))
        counts[f"rows_out/{split}"] = len(rows)
        written.extend(r["features"] for r in rows)
    dead_dir = _join(out_dir, "dead_letter")
    _makedirs(dead_dir)
    _write_text(_join(dead_dir, f"rejected-{name}.jsonl"),
                "".join(line + "\n" for line in sorted(line for _, line in rejected)))
    for reason, _ in rejected:
        counts[f"rejected/{reason}"] = counts.get(f"rejected/{reason}", 0) + 1
    return {"bucket": bucket, "counts": counts, "features": feature_moments(written)}


def encode_record(record: Record, index: Mapping[str, int],
                  ranks: Mapping[str, Tuple[int, int]]) -> bytes:
    """A kept record -> serialized tf.Example (``schema.encode_example``); train rows carry
    their (class_rank, class_count) from ``ranks``."""
    label = record["label"]
    rank, count = ranks.get(record["id"], (-1, 0)) if record["split"] == "train" else (-1, 0)
    return encode_example({
        fk.ID: record["id"], fk.LON: record["lon"], fk.LAT: record["lat"],
        fk.IMAGE_FEATURES: record["features"],
        fk.LABEL: index[label] if label is not None else fk.UNLABELED,
        fk.CLASS_RANK: rank, fk.CLASS_COUNT: count, fk.REGION: record["region"],
        fk.LABEL_SUBSET: record["subset"] if record.get("subset") is not None else fk.NO_SUBSET,
    })


def _join(*parts: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(*parts)


def _makedirs(path: str) -> None:
    """Creates a directory; another worker may create it at the same time."""
    from apache_beam.io.filesystems import FileSystems

    try:
        FileSystems.mkdirs(path)
    except Exception:  # already there (a local mkdirs refuses an existing directory)
        if not FileSystems.exists(path):
            raise


def _write_text(path: str, text: str) -> None:
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(text.encode("utf-8"))


# ----- statistics ---------------------------------------------------------------------------------
STD_FLOOR = 1e-6
Moments = Tuple[int, Optional[np.ndarray], Optional[np.ndarray]]  # (n, mean, m2), float64


def feature_moments(vectors: Sequence[np.ndarray]) -> Moments:
    """(n, per-dimension mean, sum of squared deviations) of feature vectors, in float64."""
    if not len(vectors):
        return 0, None, None
    x = np.asarray(vectors, dtype=np.float64)
    mean = x.mean(axis=0)
    return len(x), mean, ((x - mean) ** 2).sum(axis=0)


def merge_moments(a: Moments, b: Moments) -> Moments:
    """Chan et al.'s parallel update: neither a large mean nor many rows cancel digits."""
    (na, ma, qa), (nb, mb, qb) = a, b
    if not nb:
        return a
    if not na:
        return nb, np.array(mb, dtype=np.float64), np.array(qb, dtype=np.float64)
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), qa + qb + delta * delta * (na * nb / n)


def feature_stats(moments: Moments) -> Dict[str, Any]:
    """metadata.json's ``feature_stats``: mean and population std (floored at ``STD_FLOOR``)."""
    n, mean, m2 = moments
    if not n:
        return {"count": 0, "mean": None, "std": None, "std_floor": STD_FLOOR}
    std = np.maximum(np.sqrt(m2 / n), STD_FLOOR)
    return {"count": int(n), "mean": [float(v) for v in mean], "std": [float(v) for v in std],
            "std_floor": STD_FLOOR}


def write_stats(out_dir: str, buckets: Sequence[Dict[str, Any]], counts: Mapping[str, int],
                vocabulary: Sequence[str]) -> None:
    """The ``_ingest_stats`` files ``outputs.write_outputs`` reads: counts (one JSON pair a
    line, sorted), the vocabulary, the feature statistics (buckets merged in bucket order)."""
    from apache_beam.io.filesystems import FileSystems

    totals: Dict[str, int] = dict(counts)
    moments: Moments = (0, None, None)
    for stats in sorted(buckets, key=lambda s: s["bucket"]):
        for key, n in stats["counts"].items():
            totals[key] = totals.get(key, 0) + n
        moments = merge_moments(moments, stats["features"])
    files = {"counts-00000-of-00001.jsonl": "".join(json.dumps([k, v]) + "\n" for k, v in sorted(totals.items())),
             "vocabulary-00000-of-00001.json": json.dumps(list(vocabulary)) + "\n",
             "feature_stats-00000-of-00001.json": json.dumps(feature_stats(moments)) + "\n"}
    stats_dir = FileSystems.join(out_dir, STATS_DIR)
    _makedirs(stats_dir)
    for name, text in files.items():
        _write_text(FileSystems.join(stats_dir, name), text)
