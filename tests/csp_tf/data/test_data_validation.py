"""Per-row checks: every rejection reason, feature formats, path resolution."""

from __future__ import annotations

import numpy as np
import pytest

from csp_tf.data import validation as v

VOCAB = frozenset({"cat", "dog"})


def _row(**changes):
    row = {"id": "r1", "lon": "10.5", "lat": "-20", "label": "cat", "features": "1 2 3"}
    row.update(changes)
    return {k: val for k, val in row.items() if val is not _DROP}


_DROP = object()


def _reason(row, vocab=VOCAB, dim=3, base="/base"):
    with pytest.raises(v.RowError) as caught:
        v.validate_row(row, dim, vocab, base)
    return caught.value.field, caught.value.reason


def test_a_good_row():
    rec = v.validate_row(_row(), 3, VOCAB, "/base")
    assert rec["id"] == "r1" and rec["lon"] == 10.5 and rec["lat"] == -20.0 and rec["label"] == "cat"
    np.testing.assert_array_equal(rec["features"], [1, 2, 3])
    assert rec["features"].dtype == np.float32 and rec["image_path"] is None


@pytest.mark.parametrize("changes, expected", [
    ({"id": ""}, ("id", "missing_value")),
    ({"id": _DROP}, ("id", "missing_value")),
    ({"lon": ""}, ("lon", "missing_value")),
    ({"lat": None}, ("lat", "missing_value")),
    ({"lon": "east"}, ("lon", "not_a_number")),
    ({"lat": True}, ("lat", "not_a_number")),
    ({"lon": "nan"}, ("lon", "not_finite")),
    ({"lat": float("inf")}, ("lat", "not_finite")),
    ({"lon": "180.01"}, ("lon", "lon_out_of_range")),
    ({"lat": -90.5}, ("lat", "lat_out_of_range")),
    ({"label": "bird"}, ("label", "unknown_label")),
    ({"features": ""}, ("features", "missing_value")),
    ({"features": "1 2 x"}, ("features", "bad_features")),
    ({"features": "[1, 2,"}, ("features", "bad_features")),
    ({"features": [[1, 2, 3]]}, ("features", "bad_features")),
    ({"features": [1, 2, 3, 4]}, ("features", "feature_width")),
    ({"features": "1 2"}, ("features", "feature_width")),
    ({"features": [1, float("nan"), 3]}, ("features", "not_finite")),
])
def test_each_reason(changes, expected):
    assert _reason(_row(**changes)) == expected


@pytest.mark.parametrize("features", ["1 2 3", "1,2,3", "[1, 2, 3]", " 1  2\t3 ", [1, 2, 3],
                                      np.array([1, 2, 3], np.float64), (1.0, 2.0, 3.0)])
def test_feature_formats(features):
    rec = v.validate_row(_row(features=features), 3, VOCAB, "/base")
    np.testing.assert_array_equal(rec["features"], [1, 2, 3])


def test_bounds_are_inclusive_and_unlabeled_rows_pass():
    rec = v.validate_row(_row(lon=-180, lat=90, label=""), 3, VOCAB, "/b")
    assert rec["label"] is None
    assert v.validate_row(_row(label=None), 3, VOCAB, "/b")["label"] is None
    assert v.validate_row(_row(label="anything"), 3, None, "/b")["label"] == "anything"
    assert v.validate_row(_row(id=17.0), 3, VOCAB, "/b")["id"] == "17"


def test_features_path_and_image_path(tmp_path):
    np.save(tmp_path / "f.npy", np.array([[4, 5, 6]], np.float32))
    rec = v.validate_row(_row(features=None, features_path="f.npy"), 3, VOCAB, str(tmp_path))
    np.testing.assert_array_equal(rec["features"], [4, 5, 6])
    assert _reason(_row(features=None, features_path="nope.npy"), base=str(tmp_path)) == (
        "features_path", "features_unreadable")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    assert _reason(_row(features=None, features_path="junk.npy"), base=str(tmp_path))[1] == "features_unreadable"
    rec = v.validate_row(_row(features="", image_path="img/a.png"), 3, VOCAB, "/data")
    assert rec["image_path"] == "/data/img/a.png" and rec["features"] is None
    assert v.resolve_path("gs://b/x.png", "/data") == "gs://b/x.png"
    assert v.resolve_path("x.png", "gs://b/dir") == "gs://b/dir/x.png"
    assert v.resolve_path("/abs/x.png", "/data") == "/abs/x.png"


def test_raw_lines():
    assert v.parse_csv_line('a,"1,5",2', ["id", "x", "y"]) == {"id": "a", "x": "1,5", "y": "2"}
    with pytest.raises(v.RowError, match="unparseable_row"):
        v.parse_csv_line("a,1", ["id", "x", "y"])
    assert v.parse_json_line('{"id": 1, "lat": NaN}')["id"] == 1
    for bad in ("{oops", "[1, 2]"):
        with pytest.raises(v.RowError, match="unparseable_row"):
            v.parse_json_line(bad)
    assert v.split_header("\ufeffid, lon ,lat") == ["id", "lon", "lat"]


def test_rejection_is_json_safe():
    import json

    rec = v.rejection({"lat": float("nan"), "f": np.arange(2), "n": np.float32(1.5), "b": b"x"},
                      "lat", "not_finite", "m.csv")
    text = json.dumps(rec, allow_nan=False)
    assert json.loads(text)["row"] == {"lat": "nan", "f": [0, 1], "n": 1.5, "b": "x"}
    assert rec["detail"] == v.REASONS["not_finite"]
    with pytest.raises(ValueError):
        v.RowError("x", "not_a_reason")
