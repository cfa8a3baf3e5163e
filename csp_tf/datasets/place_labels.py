"""Which real attribute of a place the ``places`` set uses as its label.

* ``country``: the place's ISO country code (GeoNames). A piecewise-constant function of location
  whose borders owe nothing to the surroundings, so the "image" side can tell little about it
  that the location does not: the main development set.
* ``haze_peak_month``: the calendar month in which the Linke turbidity climatology (pvlib's
  SoDa/MINES grid, 5', 12 months) peaks at the place: dust seasons, biomass-burning seasons,
  monsoon haze. A real climatological attribute that follows climate, not borders, so the
  surroundings features (relief, land, annual haze and its range, colour) say something about
  it and neighbouring places mostly share it: the regime the paper's method is built for
  (species ranges follow environment), used as the control set in docs/results.md. The 12
  monthly values themselves are not among the features (only their annual mean and range).
* ``altitude_band``: the place's altitude band (pvlib's 5' altitude grid, the cell the
  ``relief.alt_km`` feature reads). The positive control: the "image" side holds the answer
  exactly, so a location encoder pre-trained to agree with the images can learn the label's map
  from unlabeled places alone, which is CSP's premise at its strongest.
"""

from __future__ import annotations

from typing import List, Mapping, Tuple

import numpy as np

from csp_tf.datasets import features, rasters

LABEL_KINDS: Tuple[str, ...] = ("country", "haze_peak_month", "altitude_band")
# Numbered so that sorting (labels.txt order = class index) is calendar order.
MONTHS: Tuple[str, ...] = ("01-jan", "02-feb", "03-mar", "04-apr", "05-may", "06-jun",
                           "07-jul", "08-aug", "09-sep", "10-oct", "11-nov", "12-dec")


def haze_peak_month(lt: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> List[str]:
    """The month of the highest Linke turbidity in the place's 5' cell (``lt``: rows × cols × 12,
    value·20 as pvlib ships it); a tie goes to the earlier month."""
    if lt.ndim != 3 or lt.shape[2] != 12:
        raise ValueError(f"Linke turbidity grid must be rows x cols x 12, got {lt.shape}")
    r, c = rasters.cell_index(lt.shape[:2], lon, lat)
    peak = np.argmax(lt[r, c, :], axis=1)
    return [MONTHS[m] for m in peak.tolist()]


# Lower edges in metres; names zero-padded so that sorting (labels.txt order) is altitude order.
ALTITUDE_EDGES_M: Tuple[int, ...] = (100, 300, 600, 1200, 2000)
ALTITUDE_BANDS: Tuple[str, ...] = ("0000-0100m", "0100-0300m", "0300-0600m", "0600-1200m",
                                   "1200-2000m", "2000m-up")


def altitude_band(alt_km: np.ndarray) -> List[str]:
    """The band of each altitude (km; sea and below fall in the lowest band)."""
    alt_km = np.asarray(alt_km, np.float64)
    if not np.all(np.isfinite(alt_km)):
        raise ValueError("altitude must be finite everywhere")
    band = np.searchsorted(np.asarray(ALTITUDE_EDGES_M, np.float64) / 1000.0, alt_km, side="right")
    return [ALTITUDE_BANDS[b] for b in band.tolist()]


def compute(kind: str, rs: Mapping[str, np.ndarray], lon: np.ndarray, lat: np.ndarray) -> List[str]:
    """The labels of a non-country ``kind`` from the build's rasters (``rs``, places.read_rasters)."""
    if kind == "haze_peak_month":
        return haze_peak_month(rs["turbidity"], lon, lat)
    if kind == "altitude_band":
        return altitude_band(features.altitude_km(rs["altitude"], lon, lat))
    raise ValueError(f"label {kind!r}: not one of {list(LABEL_KINDS[1:])} (country comes with the places)")
