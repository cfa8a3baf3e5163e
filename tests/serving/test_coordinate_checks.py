"""Every lon/lat entry point applies the one rule of csp_tf.coords and says it in the same words:
the numpy check (CLI, stage inputs), the serving client, the export's in-graph check and the
serving stand-in's graph."""

import re

import numpy as np
import pytest
import tensorflow as tf

from csp_tf import coords
from csp_tf.export import check_lon_lat
from serving.client import ServingError, validate_lon_lat
from serving.standin_model import StandInCSP

NAN, INF = float("nan"), float("inf")
# (rows, bad row, bad field); rows 0 is always fine.
BAD = [
    ([[0.0, 0.0], [181.0, 0.0]], 1, "lon"),
    ([[0.0, 0.0], [-180.5, 0.0]], 1, "lon"),
    ([[0.0, 0.0], [0.0, 0.0], [10.0, 90.01]], 2, "lat"),
    ([[0.0, 0.0], [NAN, 45.0]], 1, "lon"),
    ([[0.0, 0.0], [10.0, NAN]], 1, "lat"),
    ([[0.0, 0.0], [INF, 0.0]], 1, "lon"),
    ([[0.0, 0.0], [0.0, -INF]], 1, "lat"),
]
GOOD = [[-180.0, -90.0], [180.0, 90.0], [0.0, 0.0]]


def _numpy_errors(rows, allow_missing):
    with pytest.raises(coords.CoordinateError) as numpy_err:
        coords.check_lon_lat_array(rows, "x", allow_missing=allow_missing)
    with pytest.raises(ServingError) as client_err:
        validate_lon_lat(rows, allow_missing=allow_missing)
    return [str(numpy_err.value), str(client_err.value)]


def _graph_errors(rows, allow_missing):
    standin = StandInCSP()
    calls = [lambda t: check_lon_lat(t, allow_missing)]
    if allow_missing:
        calls.append(lambda t: standin.predict_features(tf.zeros([len(rows), 8]), t))
    else:
        calls += [standin.location_prior, standin.location_embedding]
    messages = []
    for call in calls:
        with pytest.raises(tf.errors.InvalidArgumentError) as err:
            call(tf.constant(rows, tf.float32))
        messages.append(err.value.message)
    return messages


def _graph_row_and_value(message):
    """The first bad row and value that a tf.debugging.Assert message lists."""
    row = re.search(r"bad rows:\D*?(\d+)", message).group(1)
    value = re.search(r"values:\W*?(-?(?:inf|nan|[\d.e+-]+))", message).group(1)
    return int(row), float(value)


@pytest.mark.parametrize("allow_missing", [False, True])
@pytest.mark.parametrize("rows, row, field", BAD)
def test_all_entry_points_reject_the_same_rows_in_the_same_words(rows, row, field, allow_missing):
    value = rows[row][coords.FIELDS.index(field)]
    other = coords.rule("lat" if field == "lon" else "lon")
    for message in _numpy_errors(rows, allow_missing):
        assert f"row {row}: {field}={value!r}: {coords.rule(field)}" in message, message
        assert other not in message, message
    for message in _graph_errors(rows, allow_missing):
        assert coords.rule(field) in message and other not in message, message
        got_row, got_value = _graph_row_and_value(message)
        assert got_row == row, message
        np.testing.assert_allclose(got_value, value, rtol=1e-6, err_msg=message)


def test_all_entry_points_accept_the_edges_and_a_row_without_location():
    standin = StandInCSP()
    np.testing.assert_array_equal(coords.check_lon_lat_array(GOOD), np.float32(GOOD))
    np.testing.assert_array_equal(validate_lon_lat(GOOD), np.float32(GOOD))
    np.testing.assert_array_equal(check_lon_lat(tf.constant(GOOD), False).numpy(), np.float32(GOOD))
    assert standin.location_prior(tf.constant(GOOD))["probabilities"].shape == (3, 5)
    missing = GOOD + [[NAN, NAN]]
    assert np.isnan(coords.check_lon_lat_array(missing, allow_missing=True)[3]).all()
    assert np.isnan(validate_lon_lat(missing, allow_missing=True)[3]).all()
    assert np.isnan(check_lon_lat(tf.constant(missing), True).numpy()[3]).all()
    out = standin.predict_features(tf.zeros([4, 8]), tf.constant(missing))
    assert np.isfinite(out["probabilities"].numpy()).all()
    # Without allow_missing, both NaN is just a bad longitude.
    for message in _numpy_errors(missing, False) + _graph_errors(missing, False):
        assert coords.rule("lon") in message and "3" in message, message


def test_the_rule_reads_as_documented():
    assert coords.rule("lon") == ("longitude (column 0, lon) must be finite and in [-180, 180] "
                                  "degrees")
    assert coords.rule("lat") == "latitude (column 1, lat) must be finite and in [-90, 90] degrees"
