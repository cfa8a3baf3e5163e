"""place_labels: the month of peak haze at a place, read from a 12-month turbidity grid."""

from __future__ import annotations

import numpy as np
import pytest

from csp_tf.datasets import place_labels


def _grid(rows: int = 18, cols: int = 36) -> np.ndarray:
    lt = np.full((rows, cols, 12), 40, np.uint8)
    lt[:9, :, 6] = 90       # northern half peaks in July
    lt[9:, :18, 0] = 90     # south-west in January
    lt[9:, 18:, 8] = 70     # south-east: September and November tie ...
    lt[9:, 18:, 10] = 70    # ... the earlier month wins
    return lt


def test_peak_month_follows_the_cell_of_each_place():
    lon = np.array([-170.0, 10.0, -100.0, 100.0, 179.9])
    lat = np.array([45.0, 5.0, -30.0, -60.0, -89.9])
    assert place_labels.haze_peak_month(_grid(), lon, lat) == [
        "07-jul", "07-jul", "01-jan", "09-sep", "09-sep"]


def test_months_sort_in_calendar_order():
    # labels.txt is written sorted: the class index must follow the calendar
    assert sorted(place_labels.MONTHS) == list(place_labels.MONTHS) and len(place_labels.MONTHS) == 12


def test_a_grid_without_twelve_months_is_refused():
    with pytest.raises(ValueError, match="rows x cols x 12"):
        place_labels.haze_peak_month(np.zeros((18, 36, 4)), np.zeros(1), np.zeros(1))


def test_compute_dispatches_on_the_kind():
    lon, lat = np.array([10.0, -100.0]), np.array([5.0, -30.0])
    assert place_labels.compute("haze_peak_month", {"turbidity": _grid()}, lon, lat) == ["07-jul", "01-jan"]
    with pytest.raises(ValueError, match="country comes with the places"):
        place_labels.compute("country", {"turbidity": _grid()}, lon, lat)


def test_altitude_bands_split_at_their_lower_edges():
    alt_km = np.array([-0.45, 0.0, 0.0999, 0.1, 0.3, 0.599, 0.6, 1.2, 1.9999, 2.0, 5.0])
    assert place_labels.altitude_band(alt_km) == [
        "0000-0100m", "0000-0100m", "0000-0100m", "0100-0300m", "0300-0600m", "0300-0600m",
        "0600-1200m", "1200-2000m", "1200-2000m", "2000m-up", "2000m-up"]
    assert sorted(place_labels.ALTITUDE_BANDS) == list(place_labels.ALTITUDE_BANDS)


def test_altitude_band_reads_the_cell_the_relief_feature_reads():
    from csp_tf.datasets import features
    codes = np.full((18, 36), features.ALT_NODATA, np.uint8)   # no data reads as sea level
    codes[:9, :] = 100                                          # north: 100·28 m − 450 m = 2350 m
    lon, lat = np.array([10.0, 10.0]), np.array([45.0, -45.0])
    assert place_labels.compute("altitude_band", {"altitude": codes}, lon, lat) == ["2000m-up", "0000-0100m"]
    _, cols = features.relief(codes, lon, lat)
    np.testing.assert_allclose(cols[:, 0], [2.35, -0.002], atol=1e-9)


def test_non_finite_altitudes_are_refused():
    with pytest.raises(ValueError, match="finite"):
        place_labels.altitude_band(np.array([0.1, np.nan]))
