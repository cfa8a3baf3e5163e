"""Batch queries from a CSV file (``lon,lat[,feature...]``) with JSON-ready results.

The CSV has a header; ``lon`` and ``lat`` are required columns, every other column is an image
feature, in file order (``classify`` needs them, ``prior`` and ``embed`` ignore them). Rows are
sent in chunks of ``batch_size`` (keep it at or below the server's ``max_batch_size``).
Imports TensorFlow (through the client); the CLI imports this module only when it runs a query.
"""

from __future__ import annotations

import csv
import dataclasses

import numpy as np

from serving import contract
from serving.client import validate_image_features, validate_lon_lat

QUERY_KINDS = ("prior", "embed", "classify", "labels")
_NEEDS_FEATURES = ("classify", "labels")


@dataclasses.dataclass
class QueryRows:
    """Parsed query rows: lon_lat float32 [N, 2], image features float32 [N, F] (F may be 0)."""

    lon_lat: np.ndarray
    image_features: np.ndarray
    feature_columns: list[str]


def read_query_csv(path: str) -> QueryRows:
    """Reads ``path``; raises ValueError naming the line and column of anything unreadable."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        missing = [c for c in ("lon", "lat") if c not in header]
        if missing:
            raise ValueError(f"{path}: header {header} lacks column(s) {missing}")
        lon_i, lat_i = header.index("lon"), header.index("lat")
        feature_i = [i for i in range(len(header)) if i not in (lon_i, lat_i)]
        coords, feats = [], []
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}:{line}: {len(row)} values for {len(header)} columns")
            values = []
            for i, cell in enumerate(row):
                try:
                    values.append(float(cell))
                except ValueError:
                    raise ValueError(f"{path}:{line}: column {header[i]!r}: {cell!r} is not a "
                                     "number") from None
            coords.append((values[lon_i], values[lat_i]))
            feats.append([values[i] for i in feature_i])
    if not coords:
        raise ValueError(f"{path}: no data rows")
    return QueryRows(np.array(coords, np.float32),
                     np.array(feats, np.float32).reshape(len(coords), len(feature_i)),
                     [header[i] for i in feature_i])


def run_query(client, kind: str, lon_lat: np.ndarray, image_features: np.ndarray | None = None,
              batch_size: int = 64) -> list[dict]:
    """Queries ``kind`` (prior, embed, classify) for every row; one JSON-ready dict per row.

    Args:
      client: a :class:`serving.client.CSPServingClient`.
      kind: ``prior`` (location_prior), ``embed`` (location_embedding), ``classify``
        (Predict on predict_features) or ``labels`` (the Classify RPC: top-k label names and
        scores); the last two need ``image_features``.
      lon_lat: [N, 2] degrees; all rows are checked before the first request. For
        ``classify``/``labels`` a row with lon and lat both NaN has no location (image-only).
      image_features: [N, F] for ``classify`` and ``labels``.
      batch_size: rows per request.

    Raises:
      ValueError: unknown kind, or classify without features.
      serving.client.ServingError: a row is invalid or the server failed.
    """
    if kind not in QUERY_KINDS:
        raise ValueError(f"unknown query {kind!r}; expected one of {QUERY_KINDS}")
    if kind in _NEEDS_FEATURES and (image_features is None or image_features.shape[1] == 0):
        raise ValueError(f"{kind} needs image features (CSV columns besides lon,lat)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # Check every row first so an error names its row in the whole input, not in a chunk.
    lon_lat = validate_lon_lat(lon_lat, allow_missing=kind in _NEEDS_FEATURES)
    if kind in _NEEDS_FEATURES:
        image_features = validate_image_features(image_features, len(lon_lat))
    results = []
    for start in range(0, len(lon_lat), batch_size):
        coords = lon_lat[start:start + batch_size]
        if kind == "prior":
            outputs = {contract.PROBABILITIES: client.location_prior(coords)}
        elif kind == "embed":
            outputs = {contract.EMBEDDING: client.location_embedding(coords)}
        elif kind == "classify":
            outputs = client.classify(image_features[start:start + batch_size], coords)
        else:
            top = client.top_labels(image_features[start:start + batch_size], coords)
            outputs = {contract.CLASSES: [[label for label, _ in r] for r in top],
                       contract.SCORES: [[score for _, score in r] for r in top]}
        for i, (lon, lat) in enumerate(coords):
            # JSON has no NaN: a row without a location prints null coordinates.
            row = {"row": start + i, "lon": None if np.isnan(lon) else float(lon),
                   "lat": None if np.isnan(lat) else float(lat)}
            row.update({key: np.asarray(value[i]).tolist()
                        for key, value in sorted(outputs.items())})
            results.append(row)
    return results
