"""tf.data input pipelines over a data root written by ``csp_tf.data.ingest``.

``make_dataset`` is the fast path for training: files interleaved in parallel, raw records
shuffled, batched, then parsed with one ``tf.io.parse_example`` per batch (much faster than
per-record parsing), and prefetched. ``load_split_arrays`` reads a (small) split into numpy
arrays, e.g. the label-ratio subset of ``train`` for fine-tuning.

Damaged files give a ``DataError`` naming the file: ``make_dataset`` compares each file's size
with the size ingest recorded in ``metadata.json`` (a truncated or rewritten shard is caught
before training starts), and ``load_split_arrays`` / ``explain_data_loss`` turn the
``tf.errors.DataLossError`` of a corrupt record into a ``DataError`` naming the bad file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from csp_tf import features as fk
from csp_tf.data import schema, splits
from csp_tf.data.errors import DataError, first_line as _first_line

COMPRESSION = "GZIP"
CHUNK = 256  # serialized records per tf.data element inside the pipeline
READ_BUFFER = 1 << 20  # bytes of read-ahead per shard
PARSE_BLOCK = 1024  # records per tf.io.parse_example call, at least
OUTPUT_KEYS = ("lon_lat", "image_features", "label", "id", "region")


@dataclasses.dataclass
class SplitInfo:
    """Rows and shard files of one split (paths relative to the data root)."""

    rows: int
    files: List[str]
    bytes: List[int]


@dataclasses.dataclass
class DatasetMetadata:
    """The parsed ``metadata.json`` of a data root (docs/architecture.md)."""

    data_root: str
    schema_version: int
    feature_dim: int
    num_classes: int
    class_names: List[str]
    splits: Dict[str, SplitInfo]
    train_class_counts: List[int]
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict)
    # Per-dimension mean / population std (floored at 1e-6) of image_features over every row
    # the ingest wrote, labels unused (metadata.json ``feature_stats``); None for data roots
    # written before the ingest computed them.
    feature_mean: Optional[np.ndarray] = None
    feature_std: Optional[np.ndarray] = None
    feature_count: int = 0


def read_metadata(data_root: str) -> DatasetMetadata:
    """Reads ``<data_root>/metadata.json``; DataError if it is missing or not of this schema."""
    path = join(data_root, "metadata.json")
    if not tf.io.gfile.exists(path):
        raise DataError(f"{data_root!r} is not a csp-tf data root: {path} does not exist "
                        f"(run `csp-tf ingest` or `csp-tf generate --ingest` first)")
    try:
        with tf.io.gfile.GFile(path, "r") as f:
            meta = json.load(f)
        info = {name: SplitInfo(int(s["rows"]), list(s["files"]), list(s.get("bytes", [])))
                for name, s in meta["splits"].items()}
        known = {"schema_version", "feature_dim", "num_classes", "class_names", "splits",
                 "train_class_counts"}
        result = DatasetMetadata(data_root, int(meta["schema_version"]), int(meta["feature_dim"]),
                                 int(meta["num_classes"]), list(meta["class_names"]), info,
                                 list(meta["train_class_counts"]),
                                 {k: v for k, v in meta.items() if k not in known})
        result.feature_mean, result.feature_std, result.feature_count = _feature_stats(
            meta.get("feature_stats"), result.feature_dim)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a valid csp-tf metadata file: {exc!r}") from None
    if result.schema_version != schema.SCHEMA_VERSION:
        raise DataError(f"{path} has schema_version {result.schema_version}; this csp-tf reads "
                        f"{schema.SCHEMA_VERSION}: re-run the ingest")
    return result


def _feature_stats(stats: Optional[Dict[str, Any]], feature_dim: int):
    """metadata.json ``feature_stats`` -> (mean, std, count); (None, None, 0) when absent/empty."""
    if not stats or not stats.get("count") or stats.get("mean") is None:
        return None, None, 0
    mean = np.asarray(stats["mean"], dtype=np.float64)
    std = np.asarray(stats["std"], dtype=np.float64)
    if mean.shape != (feature_dim,) or std.shape != (feature_dim,):
        raise ValueError(f"feature_stats has {mean.shape} / {std.shape} values, feature_dim is {feature_dim}")
    return mean, std, int(stats["count"])


def split_files(data_root: str, split: str,
                meta: Optional[DatasetMetadata] = None) -> List[str]:
    """The shard files of ``split`` (full paths, sorted); DataError if the split is unknown."""
    if split not in fk.SPLITS:
        raise DataError(f"unknown split {split!r}; splits are {', '.join(fk.SPLITS)}")
    info = (meta or read_metadata(data_root)).splits.get(split)
    if info is None:
        raise DataError(f"{data_root!r} has no split {split!r}")
    return [join(data_root, f) for f in info.files]


def make_dataset(files: Sequence[str], feature_dim: int, batch_size: int, shuffle: bool = True,
                 seed: int = 0, deterministic: bool = False, repeat: bool = False,
                 label_ratio: Optional[float] = None, labeled_only: bool = False,
                 drop_remainder: bool = False, shuffle_buffer: int = 10000,
                 sizes: Optional[Mapping[str, int]] = None) -> tf.data.Dataset:
    """A batched dataset of dicts over TFRecord shards written by the ingest.

    Elements: ``lon_lat`` float32 (B, 2) [lon, lat degrees], ``image_features`` float32 (B, F),
    ``label`` int64 (B,) (-1 unlabeled), ``id`` string (B,), ``region`` string (B,).

    The pipeline never handles single records as tf.data elements (each costs microseconds):
    every shard is read in chunks of ``CHUNK`` serialized records, chunks of several shards are
    interleaved in parallel, and shuffling permutes a *window* of ``shuffle_buffer`` records at
    once (a random permutation of a tensor, like a shuffle buffer of that size but without the
    per-record work). Blocks of at least ``PARSE_BLOCK`` records are parsed with one
    ``tf.io.parse_example`` each (and filtered), then sliced into batches and prefetched.

    Args:
      files: shard paths (``split_files``); may mix splits, e.g. pretrain + train.
      feature_dim: F.
      batch_size: rows per batch.
      shuffle: shuffle the file order (each epoch) and the records within windows.
      seed: the shuffle seed; with ``deterministic=True`` the order is reproducible.
      deterministic: keep tf.data's output order deterministic (interleave order fixed).
      repeat: repeat forever, epochs flowing into each other (set steps per epoch).
      label_ratio: keep only the label-ratio subset of the train split
        (``splits.label_ratio_keep``: the manifest's subset, else the stratified class_rank
        rule); rows outside the train split have neither and are dropped.
      labeled_only: drop unlabeled rows (label -1).
      drop_remainder: drop the last partial batch.
      shuffle_buffer: records per shuffle window.
      sizes: the files' sizes (``file_sizes``) for ``check_files``; None reads them from the
        metadata.json of each file's data root.

    Raises:
      DataError: no files, a missing file, or a file whose size differs from metadata.json.
    """
    files = [str(f) for f in files]
    if not files:
        raise DataError("make_dataset got no files: check the split name and the data root")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise DataError(f"batch_size={batch_size!r} must be a positive integer")
    if label_ratio is not None:
        splits.keep_count(1, label_ratio)  # validates the ratio with a DataError
    check_files(files, sizes)
    spec = schema.feature_spec(feature_dim)
    det = bool(deterministic)

    file_ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        file_ds = file_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        file_ds = file_ds.repeat()
    records = file_ds.interleave(  # elements: string tensors of up to CHUNK records
        lambda f: tf.data.TFRecordDataset(f, compression_type=COMPRESSION,
                                          buffer_size=READ_BUFFER).batch(CHUNK),
        cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE, deterministic=det)
    if shuffle:
        window = max(int(shuffle_buffer), batch_size, CHUNK)
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        records = tf.data.Dataset.zip((records.rebatch(window), seeds)).map(
            _permute, num_parallel_calls=tf.data.AUTOTUNE, deterministic=det)
    filtering = label_ratio is not None or labeled_only

    def parse(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
        parsed = tf.io.parse_example(serialized, spec)
        return _to_model_inputs(_filter(parsed, label_ratio, labeled_only) if filtering else parsed)

    # Parse blocks of >= PARSE_BLOCK records (per-call overhead dominates small parses), then cut
    # the parsed tensors into batches of exactly batch_size (slicing, no per-record work).
    ds = records.rebatch(max(batch_size, PARSE_BLOCK)).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=det)
    ds = ds.rebatch(batch_size, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = det
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def load_split_arrays(data_root: str, split: str, label_ratio: Optional[float] = None,
                      batch_size: int = 4096) -> Dict[str, np.ndarray]:
    """Reads a whole split into numpy arrays, sorted by id (independent of sharding).

    Keys: ``lon_lat`` (N, 2) float32, ``image_features`` (N, F) float32, ``label``,
    ``class_rank``, ``class_count`` (N,) int64, ``label_subset`` (N,) float32 (-1: none),
    ``id``, ``region`` (N,) str objects. ``label_ratio`` (train split only) keeps the
    label-ratio subset (``splits.label_ratio_keep``).
    """
    if label_ratio is not None and split != "train":
        raise DataError(f"label_ratio applies to the train split only, not {split!r}")
    meta = read_metadata(data_root)
    files = split_files(data_root, split, meta)
    check_files(files, file_sizes(meta))
    arrays = read_arrays(files, meta.feature_dim, batch_size, rerun_hint=data_root)
    if label_ratio is not None:
        keep = splits.label_ratio_keep(arrays, label_ratio)
        arrays = {k: v[keep] for k, v in arrays.items()}
    return arrays


def read_arrays(files: Sequence[str], feature_dim: int, batch_size: int = 4096,
                rerun_hint: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Every record of ``files`` as the arrays of ``load_split_arrays``, sorted by id.

    Also for file lists outside a data root (the TFX examples artifact); a corrupt file is
    a DataError naming it.
    """
    spec = schema.feature_spec(feature_dim)
    parts: Dict[str, List[np.ndarray]] = {}
    for path in files:  # one file at a time: a DataLossError then names its file
        ds = tf.data.TFRecordDataset(path, compression_type=COMPRESSION).batch(batch_size)
        try:
            for serialized in ds:
                parsed = tf.io.parse_example(serialized, spec)
                for key, value in parsed.items():
                    parts.setdefault(key, []).append(value.numpy())
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
            hint = f"re-run the ingest for {rerun_hint!r}" if rerun_hint else "re-create it"
            raise DataError(f"{path} is corrupt or truncated ({_first_line(exc)}); {hint}") from None
    flat = {k: np.concatenate(parts[k]) if parts.get(k) else _empty(k, feature_dim) for k in spec}
    order = np.argsort(flat[fk.ID], kind="stable")
    flat = {k: v[order] for k, v in flat.items()}
    return {
        "lon_lat": np.stack([flat[fk.LON], flat[fk.LAT]], axis=1).astype(np.float32).reshape(-1, 2),
        "image_features": flat[fk.IMAGE_FEATURES].astype(np.float32),
        "label": flat[fk.LABEL].astype(np.int64),
        "class_rank": flat[fk.CLASS_RANK].astype(np.int64),
        "class_count": flat[fk.CLASS_COUNT].astype(np.int64),
        "label_subset": flat[fk.LABEL_SUBSET].astype(np.float32),
        "id": np.array([b.decode("utf-8") for b in flat[fk.ID]], dtype=object),
        "region": np.array([b.decode("utf-8") for b in flat[fk.REGION]], dtype=object),
    }


def check_files(files: Sequence[str], sizes: Optional[Mapping[str, int]] = None) -> None:
    """DataError naming the first file that is missing or whose size differs from metadata.json.

    ``sizes``: {path: bytes} (``file_sizes``); None reads the ``metadata.json`` of the data
    root that holds each file (``<root>/<split>/part-*``). Files without a recorded size (e.g.
    outside a data root) are only checked for existence.
    """
    expected = _expected_sizes(files) if sizes is None else sizes
    for path in files:
        if not tf.io.gfile.exists(path):
            raise DataError(f"TFRecord file {path} does not exist")
        size = tf.io.gfile.stat(path).length
        want = expected.get(_norm(path))
        if want is not None and size != want:
            raise DataError(f"TFRecord file {path} is {size} bytes but the ingest wrote {want}: it "
                            f"is truncated or was rewritten; re-run the ingest")


def verify_files(files: Sequence[str]) -> int:
    """Reads every record of every file (slow); DataError naming the first corrupt file.

    Returns the number of records. Use it when a DataLossError came from a training run.
    """
    total = 0
    for path in files:
        _check_gzip_stream(path)
        try:
            for batch in tf.data.TFRecordDataset(path, compression_type=COMPRESSION).batch(8192):
                total += int(tf.shape(batch)[0])
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
            raise DataError(f"{path} is corrupt or truncated ({_first_line(exc)})") from None
    return total


def _check_gzip_stream(path: str) -> None:
    """DataError if the gzip stream of ``path`` stops before its end-of-stream marker or is
    corrupt. TF's GZIP reader returns the records before a cut as if the file ended there (a
    file truncated at a deflate flush point reads as a shorter, valid file)."""
    import gzip
    import zlib

    try:
        with tf.io.gfile.GFile(path, "rb") as raw, gzip.GzipFile(fileobj=raw) as f:
            while f.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path} is corrupt or truncated (gzip: {exc})") from None


def explain_data_loss(error: Exception, files: Sequence[str]) -> DataError:
    """Turns a ``tf.errors.DataLossError`` raised while iterating ``make_dataset(files)`` into a
    DataError naming the damaged file (found by ``verify_files``). Usage::

        try:
            model.fit(make_dataset(files, ...))
        except tf.errors.DataLossError as e:
            raise reader.explain_data_loss(e, files) from None
    """
    try:
        verify_files(files)
    except DataError as found:
        return found
    return DataError(f"a TFRecord file could not be read ({_first_line(error)}), but every file "
                     f"verifies now: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''}")


# ----- helpers ----------------------------------------------------------------------------------
def _filter(parsed: Dict[str, tf.Tensor], label_ratio: Optional[float],
            labeled_only: bool) -> Dict[str, tf.Tensor]:
    keep = tf.ones_like(parsed[fk.LABEL], dtype=tf.bool)
    if labeled_only:
        keep &= parsed[fk.LABEL] >= 0
    if label_ratio is not None:
        keep &= splits.label_ratio_keep(parsed, label_ratio)
    return {k: tf.boolean_mask(v, keep) for k, v in parsed.items()}


def _permute(serialized: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(serialized)[0]), seed=seed)
    return tf.gather(serialized, order)


def _to_model_inputs(parsed: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    return {
        "lon_lat": tf.stack([parsed[fk.LON], parsed[fk.LAT]], axis=-1),
        "image_features": parsed[fk.IMAGE_FEATURES],
        "label": parsed[fk.LABEL],
        "id": parsed[fk.ID],
        "region": parsed[fk.REGION],
    }


def _expected_sizes(files: Sequence[str]) -> Dict[str, int]:
    sizes: Dict[str, int] = {}
    for root in {_dirname(_dirname(f)) for f in files}:
        if tf.io.gfile.exists(join(root, "metadata.json")):
            try:
                sizes.update(file_sizes(read_metadata(root)))
            except DataError:
                pass
    return sizes


def file_sizes(meta: DatasetMetadata) -> Dict[str, int]:
    """{file path: bytes the ingest wrote} for every shard of a data root (``check_files``)."""
    return {_norm(join(meta.data_root, rel)): int(size)
            for info in meta.splits.values() for rel, size in zip(info.files, info.bytes)}


def _empty(key: str, feature_dim: int) -> np.ndarray:
    if key == fk.IMAGE_FEATURES:
        return np.zeros((0, feature_dim), np.float32)
    dtype = {fk.ID: object, fk.REGION: object, fk.LON: np.float32, fk.LAT: np.float32,
             fk.LABEL_SUBSET: np.float32}.get(key, np.int64)
    return np.zeros((0,), dtype)


def _norm(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def join(root: str, rel: str) -> str:
    return posixpath.join(root, rel) if "://" in root else os.path.join(root, rel)


def _dirname(path: str) -> str:
    return posixpath.dirname(path.rstrip("/")) if "://" in path else os.path.dirname(os.path.normpath(path))

