"""Coarse continent-like regions for the ``region`` feature (evaluation slices only).

The boxes are deliberately simple lon/lat rectangles checked in order; they are not political
or tectonic boundaries, and points at sea fall into the box that surrounds them. Documented
in docs/data.md ("region").
"""

from __future__ import annotations

from typing import Tuple

# (name, lon_min, lon_max, lat_min, lat_max), first match wins; lon_max / lat_max exclusive
# except at +180 / +90.
REGION_BOXES: Tuple[Tuple[str, float, float, float, float], ...] = (
    ("antarctica", -180.0, 180.0, -90.0, -60.0),
    ("north_america", -180.0, -30.0, 8.0, 90.0),      # incl. Central America, Caribbean, Greenland
    ("south_america", -180.0, -30.0, -60.0, 8.0),
    ("asia", 35.0, 60.0, 12.0, 35.0),                # Arabian peninsula / Middle East
    ("europe", -30.0, 60.0, 35.0, 90.0),             # incl. Russia west of the Urals
    ("africa", -30.0, 60.0, -60.0, 35.0),
    ("oceania", 110.0, 180.0, -60.0, -10.0),          # Australia, New Zealand
    ("asia", 60.0, 180.0, -10.0, 90.0),
    ("indian_ocean", 60.0, 110.0, -60.0, -10.0),
)
REGIONS = tuple(sorted({box[0] for box in REGION_BOXES}))


def region_of(lon: float, lat: float) -> str:
    """Returns the coarse region name of a (lon, lat) point in degrees."""
    for name, lon0, lon1, lat0, lat1 in REGION_BOXES:
        if _inside(lon, lon0, lon1) and _inside(lat, lat0, lat1):
            return name
    return "other"  # unreachable for valid coordinates: the boxes tile the globe


def _inside(value: float, low: float, high: float) -> bool:
    return low <= value < high or (value == high and high in (180.0, 90.0))
