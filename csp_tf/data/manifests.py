"""Manifest files: which formats exist, how a path or glob becomes a list of files, and the
Beam transform that reads them into ``(format, source_path, payload)`` elements."""

from __future__ import annotations

import dataclasses
from typing import Any, List, Sequence, Tuple, Union

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from csp_tf.data import validation
from csp_tf.data.errors import DataError, first_line as _first_line

MANIFEST_FORMATS = {".csv": "csv", ".csv.gz": "csv", ".jsonl": "jsonl", ".jsonl.gz": "jsonl",
                    ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
# Manifest files are split into reads of about this size, so one big manifest still spreads
# over every worker (Beam's default, 64 MB, would keep a 50 MB CSV on one worker).
READ_BUNDLE_BYTES = 4 << 20


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
        for path in paths:
            fmt = manifest_format(path)
            header = _csv_header(path) if fmt == "csv" else ()
            files.append(ManifestFile(path, fmt, header))
    return files


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
    except Exception as exc:
        raise DataError(f"cannot read manifest {path!r}: {_first_line(exc)}") from None
    header = tuple(validation.split_header(first)) if first.strip() else ()
    missing = [c for c in ("id", "lon", "lat") if c not in header]
    if missing:
        raise DataError(f"manifest {path!r}: the CSV header {list(header)} lacks {', '.join(missing)}")
    return header


class ReadManifests(beam.PTransform):
    """Manifest files -> ``(format, source_path, payload)``: a text line or a Parquet row dict.

    CSV and JSONL are read line by line (splittable; one row per line, headers skipped, blank
    lines ignored); Parquet row groups become row dicts.
    """

    def __init__(self, manifests: Sequence[ManifestFile]) -> None:
        super().__init__()
        self._manifests = list(manifests)

    def expand(self, pbegin):
        parts = []
        for fmt in ("csv", "jsonl", "parquet"):
            paths = [m.path for m in self._manifests if m.fmt == fmt]
            if not paths:
                continue
            files = pbegin | f"Files[{fmt}]" >> beam.Create(paths)
            if fmt == "parquet":
                rows = files | f"Read[{fmt}]" >> beam.io.ReadAllFromParquet(
                    with_filename=True, desired_bundle_size=READ_BUNDLE_BYTES)
            else:
                rows = (files
                        | f"Read[{fmt}]" >> beam.io.ReadAllFromText(
                            skip_header_lines=1 if fmt == "csv" else 0, with_filename=True,
                            desired_bundle_size=READ_BUNDLE_BYTES)
                        | f"NonBlank[{fmt}]" >> beam.Filter(_non_blank))
            parts.append(rows | f"Tag[{fmt}]" >> beam.Map(_tag_format, fmt))
        if not parts:
            return pbegin | "NoManifests" >> beam.Create([])
        return tuple(parts) | "AllRows" >> beam.Flatten()


def _tag_format(element: Tuple[str, Any], fmt: str) -> Tuple[str, str, Any]:
    source, payload = element
    return fmt, source, payload


def _non_blank(element: Tuple[str, str]) -> bool:
    return bool(element[1].strip())


