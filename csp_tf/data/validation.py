"""Per-row checks of a manifest row: raw row -> validated record, or a ``RowError``.

Pure Python + numpy, no Beam: the ingest's DoFns call these and route a ``RowError`` to the
dead letter as ``{"row": raw, "field": ..., "reason": ..., "source": file, "detail": ...}``.

Manifest columns (docs/data.md): ``id``, ``lon``, ``lat``, optional ``label`` (class name),
optional ``split`` / ``subset`` (the manifest's own split and label subset, ``splits.py``),
``date`` and ``user`` (kept only in the dead letter; docs/reference.md §1 says they are unused),
and one feature source, looked up in this order: ``features`` (list, JSON list string, or
space/comma separated floats), ``features_path`` (a ``.npy`` file holding F floats), ``image_path``
(an image the backbone turns into features). Relative paths are resolved against the directory of
the manifest file that names them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import posixpath
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from csp_tf import coords
from csp_tf.data import splits

# Every reason a row can be rejected for, with what it means (docs/data.md lists the same).
REASONS: Dict[str, str] = {
    "unparseable_row": "the line is not a CSV row with the header's columns, or not a JSON object",
    "encoding_error": "the line is not valid UTF-8",
    "duplicate_field": "a JSON object names the same field twice",
    "missing_value": "a required field (id, lon, lat, or a feature source) is absent or empty",
    "not_a_number": "lon or lat is not a number",
    "not_finite": "lon, lat or a feature value is NaN or infinite",
    "lon_out_of_range": "lon is outside [-180, 180]",
    "lat_out_of_range": "lat is outside [-90, 90]",
    "bad_features": "the features value is not a list of numbers",
    "features_unreadable": "features_path does not exist or is not a readable .npy array",
    "feature_width": "the number of feature values differs from feature_dim",
    "unknown_label": "the label is not in the class vocabulary",
    "bad_split": "split is not one of train, val, test, pretrain (or names a labeled split for an unlabeled row)",
    "bad_subset": "subset is not a label ratio in (0, 1]",
    "no_backbone": "the row has only an image_path but the ingest was given no --backbone",
    "image_unreadable": "image_path does not exist or cannot be read",
    "image_undecodable": "image_path is not a decodable image (PNG, JPEG, GIF, BMP)",
    "duplicate_id": "another row has the same id (the first in a stable order is kept)",
    "unexpected_error": "an unexpected exception while processing the row (a bug: please report)",
}

FEATURE_SOURCES = ("features", "features_path", "image_path")


class RowError(Exception):
    """A manifest row failed a check: ``field`` is the column, ``reason`` a key of REASONS."""

    def __init__(self, field: str, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{field}: {reason}" + (f" ({detail})" if detail else ""))
        self.field = field
        self.reason = reason
        self.detail = detail or REASONS[reason]


# ----- raw rows ---------------------------------------------------------------------------------
def decode_line(data: Any) -> str:
    """A manifest line read as bytes -> text; a non-UTF-8 byte is this row's problem only.

    A leading UTF-8 byte-order mark is dropped (only a file's first line has one).
    """
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    try:
        return bytes(data).decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise RowError("<row>", "encoding_error",
                       f"not UTF-8: byte 0x{exc.object[exc.start]:02x} at byte offset {exc.start} "
                       f"of the line ({exc.reason}); re-encode the manifest as UTF-8") from None


def parse_csv_line(line: str, header: Sequence[str]) -> Dict[str, str]:
    """One CSV line -> {column: text}; the header comes from the file's first line."""
    try:
        values = next(csv.reader([line]))
    except (csv.Error, StopIteration) as exc:
        raise RowError("<row>", "unparseable_row", f"not a CSV line: {exc}") from None
    if len(values) != len(header):
        raise RowError("<row>", "unparseable_row",
                       f"{len(values)} fields, the header has {len(header)}")
    return dict(zip(header, values))


def parse_json_line(line: str) -> Dict[str, Any]:
    """One JSONL line -> dict (NaN/Infinity literals are accepted and caught later)."""
    try:
        value = json.loads(line.lstrip("\ufeff"), object_pairs_hook=_unique_keys)
    except _DuplicateKey as dup:
        key = dup.args[0]
        raise RowError(key, "duplicate_field", f"the JSON object names {key!r} twice") from None
    except ValueError as exc:
        raise RowError("<row>", "unparseable_row", f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RowError("<row>", "unparseable_row", f"a JSON {type(value).__name__}, not an object")
    return value


class _DuplicateKey(Exception):
    """``args[0]``: the key a JSON object names twice."""


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:  # json's default keeps the last one silently
            raise _DuplicateKey(key)
        out[key] = value
    return out


# ----- validated records ------------------------------------------------------------------------
def validate_row(raw: Mapping[str, Any], feature_dim: int,
                 vocabulary: Optional[FrozenSet[str]], base_dir: str) -> Dict[str, Any]:
    """Checks a raw row; returns the record the pipeline carries on, or raises ``RowError``.

    Record keys: ``id`` (str), ``lon``/``lat`` (float), ``label`` (str or None),
    ``features`` (float32 [feature_dim] or None when an image must still be embedded),
    ``image_path`` (resolved path or None), ``split`` (the manifest's split or None),
    ``subset`` (the manifest's label subset in (0, 1] or None).
    """
    row_id = _text(raw.get("id"))
    if row_id is None:
        raise RowError("id", "missing_value")
    lon = _coordinate(raw, "lon", coords.BOUNDS["lon"])
    lat = _coordinate(raw, "lat", coords.BOUNDS["lat"])
    label = _text(raw.get("label"))
    if label is not None and vocabulary is not None and label not in vocabulary:
        raise RowError("label", "unknown_label", f"{label!r} is not one of the {len(vocabulary)} classes")
    record: Dict[str, Any] = {"id": row_id, "lon": lon, "lat": lat, "label": label,
                              "features": None, "image_path": None,
                              "split": _manifest_split(raw, label), "subset": _manifest_subset(raw)}
    source = next((k for k in FEATURE_SOURCES if _present(raw.get(k))), None)
    if source is None:
        raise RowError("features", "missing_value", "no features, features_path or image_path")
    if source == "features":
        record["features"] = check_features(parse_features(raw["features"]), feature_dim, "features")
    elif source == "features_path":
        path = resolve_path(str(raw["features_path"]).strip(), base_dir)
        record["features"] = check_features(load_npy(path), feature_dim, "features_path")
    else:
        record["image_path"] = resolve_path(str(raw["image_path"]).strip(), base_dir)
    return record


def _manifest_split(raw: Mapping[str, Any], label: Optional[str]) -> Optional[str]:
    try:
        split = splits.parse_manifest_split(raw.get("split"))
    except ValueError as exc:
        raise RowError("split", "bad_split", str(exc)) from None
    if split not in (None, "pretrain") and label is None:
        raise RowError("split", "bad_split", f"an unlabeled row cannot go to {split!r}: give it a "
                                             f"label or the split pretrain")
    return split


def _manifest_subset(raw: Mapping[str, Any]) -> Optional[float]:
    try:
        return splits.parse_manifest_subset(raw.get("subset"))
    except ValueError as exc:
        raise RowError("subset", "bad_subset", f"{exc}: a subset is the smallest label ratio "
                                               f"whose labeled subset holds the row") from None


def parse_features(value: Any) -> np.ndarray:
    """A list / array / JSON list string / space- or comma-separated string -> float32 array."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
        except ValueError as exc:
            raise RowError("features", "bad_features", f"not a JSON list: {exc}") from None
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise RowError("features", "bad_features", f"not numbers: {exc}") from None
    if array.ndim != 1:
        raise RowError("features", "bad_features", f"shape {array.shape}, expected a flat list")
    return array


def check_features(array: np.ndarray, feature_dim: int, field: str) -> np.ndarray:
    """Width and finiteness checks of a feature vector."""
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.shape[0] != feature_dim:
        raise RowError(field, "feature_width", f"{tuple(array.shape)} values, feature_dim is {feature_dim}")
    if not np.all(np.isfinite(array)):
        raise RowError(field, "not_finite", "a feature value is NaN or infinite")
    return array.astype(np.float32, copy=False)


def load_npy(path: str) -> np.ndarray:
    """Reads a ``.npy`` array (local or any Beam filesystem such as gs://)."""
    from apache_beam.io.filesystems import FileSystems  # local: keeps this module Beam-free

    try:
        with FileSystems.open(path) as f:
            return np.asarray(np.load(io.BytesIO(f.read()), allow_pickle=False), dtype=np.float32)
    except Exception as exc:  # any I/O or format problem is this row's problem
        raise RowError("features_path", "features_unreadable", f"{path}: {exc}") from None


def resolve_path(path: str, base_dir: str) -> str:
    """Absolute paths and URLs as given; relative ones against the manifest's directory."""
    if "://" in path or os.path.isabs(path):
        return path
    return (posixpath.join if "://" in base_dir else os.path.join)(base_dir, path)


def jsonable(value: Any) -> Any:
    """A raw row made JSON-safe for the dead letter (numpy -> lists, NaN/inf -> strings)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def rejection(raw: Any, field: str, reason: str, source: str, detail: str = "") -> Dict[str, Any]:
    """The dead-letter record of one rejected row."""
    return {"row": jsonable(raw), "field": field, "reason": reason, "source": source,
            "detail": detail or REASONS.get(reason, "")}


# ----- helpers ----------------------------------------------------------------------------------
def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value.strip()) if isinstance(value, str) else True


def _text(value: Any) -> Optional[str]:
    if not _present(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # parquet/pandas integer ids that went through float
    return str(value).strip()


def _coordinate(raw: Mapping[str, Any], field: str, bound: float) -> float:
    value = raw.get(field)
    if not _present(value) and not (isinstance(value, float) and math.isnan(value)):
        raise RowError(field, "missing_value")
    if isinstance(value, bool):
        raise RowError(field, "not_a_number", f"{value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(field, "not_a_number", f"{value!r}") from None
    if not math.isfinite(number):
        raise RowError(field, "not_finite", f"{value!r}")
    if not -bound <= number <= bound:
        # repr: the shortest text that round-trips, so 180.0000001 never prints as 180
        raise RowError(field, f"{field}_out_of_range", f"{number!r} is outside [-{bound:g}, {bound:g}]")
    return number


def split_header(line: str) -> List[str]:
    """The column names of a CSV header line (whitespace and a UTF-8 BOM stripped).

    ValueError names a column that appears twice (a dict row would keep only the last one).
    """
    names = [h.strip() for h in next(csv.reader([line.lstrip("\ufeff")]))]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"column {repeated[0]!r} appears {names.count(repeated[0])} times in the header")
    return names
