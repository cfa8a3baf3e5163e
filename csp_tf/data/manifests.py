"""Manifest files: which formats exist, how a path or glob becomes a list of files, and the
checks that run before the pipeline (``csp_tf.data.ingest_rows`` reads them, in ranges).

Whole-file damage is caught here, before the pipeline, and named: a truncated or corrupt gzip
manifest (Beam's text source stops quietly at a cut gzip stream, losing rows without a trace),
a 0-byte, truncated or non-Parquet ``.parquet`` (Beam would read 0 rows or fail deep in a
worker), a CSV header without id/lon/lat or with a repeated column.
"""

from __future__ import annotations

import dataclasses
import gzip
import zlib
from typing import List, Sequence, Tuple, Union

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from csp_tf.data import validation
from csp_tf.data.errors import DataError, first_line as _first_line

MANIFEST_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".jsonl": "jsonl", ".jsonl.gz": "jsonl",
                    ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
# Manifest files are split into reads of about this size, so one big manifest still spreads
# over every worker (Beam's default, 64 MB, would keep a 50 MB CSV on one worker).
READ_BUNDLE_BYTES = 4 << 20
REQUIRED_COLUMNS = ("id", "lon", "lat")
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class ManifestFile:
    """One matched manifest file: its path, format and (for CSV) header columns."""

    path: str
    fmt: str
    header: Tuple[str, ...] = ()


def find_manifests(manifest: Union[str, Sequence[str]]) -> List[ManifestFile]:
    """Expands paths/globs to manifest files with their formats; DataError if none match."""
    patterns = [manifest] if isinstance(manifest, str) else list(manifest or [])
    if not patterns:
        raise DataError("no manifest given: pass --manifest PATH (CSV, JSONL or Parquet; globs allowed)")
    files: List[ManifestFile] = []
    for pattern in patterns:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as exc:
            raise DataError(f"cannot list manifest {pattern!r}: {_first_line(exc)}") from None
        paths = sorted(m.path for m in matched if not m.path.endswith("/"))
        if not paths:
            raise DataError(f"manifest {pattern!r} matches no files")
        files.extend(check_manifest(path) for path in paths)
    return files


def check_manifest(path: str) -> ManifestFile:
    """Pre-flight checks of one manifest file (see the module doc); DataError naming it."""
    fmt = manifest_format(path)
    if path.lower().endswith(".gz"):
        check_gzip(path)
    if fmt == "parquet":
        check_parquet(path)
    header = _csv_header(path) if fmt == "csv" else ()
    return ManifestFile(path, fmt, header)


def check_gzip(path: str) -> None:
    """Reads a gzip file to its end-of-stream marker; DataError if it is cut short or corrupt."""
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
            with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                size = sum(len(chunk) for chunk in iter(lambda: f.read(_CHUNK), b""))
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"manifest {path!r} is a truncated or corrupt gzip file ({_first_line(exc)}); "
                        f"no row of it was ingested: re-copy or re-compress it and run again") from None
    if size == 0 and _size(path) == 0:
        raise DataError(f"manifest {path!r} is an empty file, not gzip data: re-copy it and run again")


def check_parquet(path: str) -> None:
    """Opens a Parquet file's footer and schema; DataError for a 0-byte, truncated or
    non-Parquet file, a repeated column or a missing id/lon/lat column."""
    import pyarrow.parquet as pq  # Beam's Parquet reader needs pyarrow anyway

    if _size(path) == 0:
        raise DataError(f"manifest {path!r} is an empty (0-byte) file, not Parquet: re-export it")
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            names = list(pq.ParquetFile(f).schema_arrow.names)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for damaged files
        raise DataError(f"manifest {path!r} is not a readable Parquet file ({_first_line(exc)}): "
                        f"it is truncated or not Parquet; re-export it and run again") from None
    _check_columns(path, names, "Parquet schema")


def _check_columns(path: str, names: Sequence[str], what: str) -> None:
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise DataError(f"manifest {path!r}: column {repeated[0]!r} appears more than once in the "
                        f"{what}; rename or drop the extra one")
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise DataError(f"manifest {path!r}: the {what} {list(names)} lacks {', '.join(missing)}")


def _size(path: str) -> int:
    try:
        return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    except Exception:
        return -1


def manifest_format(path: str) -> str:
    """``csv`` / ``jsonl`` / ``parquet`` from the file extension; DataError otherwise."""
    lower = path.lower()
    for ext in sorted(MANIFEST_FORMATS, key=len, reverse=True):
        if lower.endswith(ext):
            return MANIFEST_FORMATS[ext]
    raise DataError(f"manifest {path!r}: unknown format; use one of {', '.join(MANIFEST_FORMATS)}")


def _csv_header(path: str) -> Tuple[str, ...]:
    try:
        with FileSystems.open(path) as f:
            first = f.readline().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"manifest {path!r}: the CSV header is not UTF-8 (byte offset {exc.start}); "
                        f"re-encode the file as UTF-8") from None
    except Exception as exc:
        raise DataError(f"cannot read manifest {path!r}: {_first_line(exc)}") from None
    try:
        header = tuple(validation.split_header(first)) if first.strip() else ()
    except ValueError as exc:
        raise DataError(f"manifest {path!r}: {exc}; rename or drop the extra one") from None
    _check_columns(path, header, "CSV header")
    return header
