"""Coordinate checks for user-supplied lon/lat arrays (degrees): a clear error, never a NaN."""

from __future__ import annotations

import numpy as np


class CoordinateError(ValueError):
    """Names the row, the field and the bad value."""


def check_lon_lat_array(lon_lat: np.ndarray, source: str = "input") -> np.ndarray:
    """Returns ``lon_lat`` as float32 (N, 2) or raises CoordinateError at the first bad row."""
    arr = np.asarray(lon_lat, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise CoordinateError(f"{source}: lon_lat must have shape (N, 2), got {arr.shape}")
    for col, (name, bound) in enumerate((("lon", 180.0), ("lat", 90.0))):
        v = arr[:, col]
        bad = ~np.isfinite(v) | (np.abs(v) > bound)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CoordinateError(f"{source}: row {row}: {name}={v[row]!r} must be finite and in "
                                  f"[-{bound:g}, {bound:g}] degrees ({int(bad.sum())} bad rows)")
    return arr.astype(np.float32)
