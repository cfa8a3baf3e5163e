"""Coarse regions of the ``region`` feature."""

from __future__ import annotations

import numpy as np
import pytest

from csp_tf.data.regions import REGIONS, region_of


@pytest.mark.parametrize("lon, lat, region", [
    (2.35, 48.86, "europe"), (-74.0, 40.7, "north_america"), (-99.1, 19.4, "north_america"),
    (-46.6, -23.5, "south_america"), (36.8, -1.3, "africa"), (46.7, 24.7, "asia"),
    (139.7, 35.7, "asia"), (77.2, 28.6, "asia"), (151.2, -33.9, "oceania"),
    (174.8, -41.3, "oceania"), (0.0, -80.0, "antarctica"), (-40.0, 72.0, "north_america"),
    (180.0, 90.0, "asia"), (-180.0, -90.0, "antarctica"),
])
def test_known_places(lon, lat, region):
    assert region_of(lon, lat) == region


def test_boxes_cover_the_globe():
    names = {region_of(lon, lat) for lon in np.linspace(-180, 180, 73) for lat in np.linspace(-90, 90, 37)}
    assert "other" not in names and names <= set(REGIONS)
