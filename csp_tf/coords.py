"""The one lon/lat rule (degrees): its bounds, its wording, and the numpy check.

The CLI, the stage inputs and the serving client check with :func:`check_lon_lat_array`; the
exported graphs (``csp_tf.export.check_lon_lat``, also used by the serving stand-in) build their
in-graph check from :data:`BOUNDS` and :func:`rule`, so every error names the row, the field and
the value in the same words.
"""

from __future__ import annotations

import numpy as np

FIELDS = ("lon", "lat")  # column order of a lon_lat array
BOUNDS = {"lon": 180.0, "lat": 90.0}  # |value| <= bound
NAMES = {"lon": "longitude", "lat": "latitude"}
NO_LOCATION = "a row without a location has BOTH lon and lat NaN"


class CoordinateError(ValueError):
    """Names the row, the field and the bad value."""


def rule(field: str) -> str:
    """What ``field`` must be, e.g. ``longitude (column 0, lon) must be finite and in [-180, 180]
    degrees``."""
    bound = BOUNDS[field]
    return (f"{NAMES[field]} (column {FIELDS.index(field)}, {field}) must be finite and in "
            f"[-{bound:g}, {bound:g}] degrees")


def check_lon_lat_array(lon_lat, source: str = "input", allow_missing: bool = False) -> np.ndarray:
    """Returns ``lon_lat`` as float32 (N, 2) or raises CoordinateError at the first bad row.

    With ``allow_missing`` a row whose lon AND lat are both NaN ("no location") passes; a row
    with one NaN coordinate never does.
    """
    try:
        arr = np.asarray(lon_lat, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CoordinateError(f"{source}: lon_lat must be numbers: {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise CoordinateError(f"{source}: lon_lat must have shape [N, 2] (lon, lat), got "
                              f"{list(arr.shape)}")
    missing = np.isnan(arr).all(axis=1) if allow_missing else np.zeros(len(arr), bool)
    note = f" ({NO_LOCATION})" if allow_missing else ""
    for col, field in enumerate(FIELDS):
        v = arr[:, col]
        bad = ~missing & ~(np.abs(v) <= BOUNDS[field])  # NaN compares False: bad too
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            n = int(bad.sum())
            raise CoordinateError(f"{source}: row {row}: {field}={float(v[row])!r}: {rule(field)}"
                                  f"{note} ({n} bad row{'s' * (n > 1)})")
    return arr.astype(np.float32)


def unit_sphere(lon_lat) -> np.ndarray:
    """(N, 2) degrees → (N, 3) float64 points on the unit sphere (chord distance is monotone in
    the great-circle distance, so Euclidean nearest neighbours there are nearest on the globe)."""
    ll = np.radians(np.asarray(lon_lat, np.float64))
    lon, lat = ll[:, 0], ll[:, 1]
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)


def located_rows(arrays) -> dict:
    """The rows of ``arrays`` (``lon_lat``, ``label``, ...) with a label (>= 0) and both
    coordinates: what a kNN, a baseline or a place memory can hold or score."""
    labels = np.asarray(arrays["label"])
    keep = (labels >= 0) & ~np.isnan(np.asarray(arrays["lon_lat"], np.float64)).any(axis=1)
    return {k: np.asarray(v)[keep] for k, v in arrays.items()}


def nearest_other_distances_deg(lon_lat: np.ndarray) -> np.ndarray:
    """float64 (N,): great-circle distance (degrees) from each labeled place to its nearest other
    labeled place; duplicates count as distance 0, a row without a location as NaN. ValueError
    with fewer than two places."""
    from sklearn.neighbors import BallTree

    pts = np.asarray(lon_lat, dtype=np.float64)
    located = ~np.isnan(pts).any(axis=1)
    if located.sum() < 2:
        raise ValueError(f"measuring the labeled places' spacing needs at least 2 labeled places "
                         f"with a location, got {int(located.sum())}")
    lat_lon = np.radians(pts[located][:, ::-1])
    dist, _ = BallTree(lat_lon, metric="haversine").query(lat_lon, k=2)
    out = np.full(len(pts), np.nan)
    out[located] = np.degrees(dist[:, 1])
    return out
