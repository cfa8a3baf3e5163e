"""Global lon/lat grids and exact windowed statistics around points.

Every raster used is equirectangular over the whole globe, row 0 at the north edge (90°N),
column 0 at 180°W, cells centred (pvlib's ``_degrees_to_index`` convention). Windows are
boxes of ±h degrees of latitude and ±h/cos(lat) degrees of longitude, so a window covers
about the same ground at every latitude; they wrap across the antimeridian and are clipped
at the poles. Sums come from integer summed-area tables, so every statistic is exact up to
one final float division: the same inputs give the same bits on every machine.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

# Longitude half-widths stop growing beyond this latitude (cos 78.5° ≈ 0.2): near the poles a
# ground-constant window would span the whole parallel.
COS_FLOOR = 0.2


def cell_index(shape: Tuple[int, int], lon: np.ndarray, lat: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(row, col) of the cell holding each point, for a global grid of ``shape`` (rows, cols)."""
    rows, cols = shape
    r = np.floor((90.0 - np.asarray(lat, np.float64)) * (rows / 180.0)).astype(np.int64)
    c = np.floor((np.asarray(lon, np.float64) + 180.0) * (cols / 360.0)).astype(np.int64)
    return np.clip(r, 0, rows - 1), np.mod(c, cols)


def half_widths(shape: Tuple[int, int], lat: np.ndarray, h_deg: float) -> Tuple[int, np.ndarray]:
    """Window half-sizes in cells: rows (one int) and cols (per point, wider toward the poles)."""
    rows, cols = shape
    hr = int(round(h_deg * rows / 180.0))
    coslat = np.maximum(np.cos(np.radians(np.asarray(lat, np.float64))), COS_FLOOR)
    hc = np.rint(h_deg * cols / 360.0 / coslat).astype(np.int64)
    return hr, np.minimum(hc, (cols - 1) // 2)


class WindowSums:
    """Summed-area table of an integer grid, padded by ``pad`` wrapped columns on each side."""

    def __init__(self, values: np.ndarray, pad: int):
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"WindowSums needs a 2-D integer grid, got {values.dtype} {values.shape}")
        self.rows, self.cols = values.shape
        self.pad = int(min(max(pad, 0), self.cols))
        v = values.astype(np.int64, copy=False)
        if self.pad:
            v = np.concatenate([v[:, -self.pad:], v, v[:, :self.pad]], axis=1)
        table = np.zeros((v.shape[0] + 1, v.shape[1] + 1), np.int64)
        np.cumsum(v, axis=0, out=table[1:, 1:])
        np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
        self.table = table

    def box(self, r: np.ndarray, c: np.ndarray, hr: int, hc: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(sum, cell count) over rows r±hr (clipped) and cols c±hc (wrapped) for each point."""
        hc = np.asarray(hc, np.int64)
        if np.any(hc > self.pad):
            raise ValueError(f"window half-width {int(hc.max())} exceeds the table's pad {self.pad}")
        r0 = np.maximum(r - hr, 0)
        r1 = np.minimum(r + hr, self.rows - 1) + 1
        c0 = c - hc + self.pad
        c1 = c + hc + self.pad + 1
        t = self.table
        total = t[r1, c1] - t[r0, c1] - t[r1, c0] + t[r0, c0]
        return total, (r1 - r0) * (c1 - c0)


def max_half_width(shape: Tuple[int, int], h_deg: float) -> int:
    """The widest column half-size ``half_widths`` gives for ``h_deg`` at any latitude."""
    return int(half_widths(shape, np.array([90.0]), h_deg)[1][0])


def _mean_std(s: np.ndarray, s2: Optional[np.ndarray], n: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    mean = s / n
    if s2 is None:
        return mean, np.zeros_like(mean)
    var = np.maximum(s2 / n - mean * mean, 0.0)
    return mean, np.sqrt(var)


def window_mean_std(values: np.ndarray, r: np.ndarray, c: np.ndarray, hr: int,
                    hc: np.ndarray, with_std: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of an integer grid in each point's window (std 0 if off)."""
    pad = int(np.max(hc)) if len(hc) else 0
    s, n = WindowSums(values, pad).box(r, c, hr, hc)
    s2 = WindowSums(values.astype(np.int64) ** 2, pad).box(r, c, hr, hc)[0] if with_std else None
    return _mean_std(s, s2, n)


class WindowStats:
    """``window_mean_std`` with its tables built once, for any window up to ``max_h_deg``.

    The tables are padded for the widest window at any latitude, so any number of point
    batches read them at a cost per point, not per grid cell (the sums are exact integers, so
    the results are the bits ``window_mean_std`` gives).
    """

    def __init__(self, values: np.ndarray, max_h_deg: float, with_std: bool = True):
        pad = max_half_width(values.shape, max_h_deg)
        self.sums = WindowSums(values, pad)
        self.squares = WindowSums(values.astype(np.int64) ** 2, pad) if with_std else None

    def mean_std(self, r: np.ndarray, c: np.ndarray, hr: int, hc: np.ndarray,
                 with_std: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        if with_std and self.squares is None:
            raise ValueError("these WindowStats were built without squares (with_std=False)")
        s, n = self.sums.box(r, c, hr, hc)
        s2 = self.squares.box(r, c, hr, hc)[0] if with_std else None
        return _mean_std(s, s2, n)


def gradient_magnitude(values: np.ndarray) -> np.ndarray:
    """|Δ north-south| + |Δ east-west| between neighbouring cells (lon wraps), as integers."""
    v = values.astype(np.int64)
    dy = np.zeros_like(v)
    dy[:-1] = np.abs(np.diff(v, axis=0))
    dx = np.abs(np.roll(v, -1, axis=1) - v)
    return dy + dx


def block_sum(mask: np.ndarray, factor: int, chunk_rows: int = 2160) -> np.ndarray:
    """Counts of True cells in ``factor`` x ``factor`` blocks (read in row chunks to save memory)."""
    if factor == 1:
        return mask.astype(np.int32)
    rows, cols = mask.shape
    if rows % factor or cols % factor:
        raise ValueError(f"grid {mask.shape} is not divisible into {factor}x{factor} blocks")
    out = np.empty((rows // factor, cols // factor), np.int32)
    step = max(factor, (chunk_rows // factor) * factor)
    for i in range(0, rows, step):
        part = mask[i:i + step]
        out[i // factor:(i + len(part)) // factor] = part.reshape(
            len(part) // factor, factor, cols // factor, factor).sum(axis=(1, 3), dtype=np.int32)
    return out
