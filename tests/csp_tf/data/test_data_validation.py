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


# ----- out-of-range messages and the manifest's split / subset columns -----------------------
def test_out_of_range_message_prints_enough_digits():
    with pytest.raises(v.RowError) as caught:
        v.validate_row(_row(lon="180.0000001"), 3, VOCAB, "/base")
    assert caught.value.reason == "lon_out_of_range"
    assert "180.0000001 is outside [-180, 180]" in caught.value.detail


def test_bom_and_duplicate_keys_in_json_lines():
    assert v.parse_json_line('\ufeff{"id": "a", "lon": 1}') == {"id": "a", "lon": 1}
    assert v.decode_line(b'\xef\xbb\xbf{"id": "a"}') == '{"id": "a"}'
    with pytest.raises(v.RowError) as caught:
        v.parse_json_line('{"id": "a", "lat": 1, "lat": 2}')
    assert (caught.value.field, caught.value.reason) == ("lat", "duplicate_field")


def test_a_non_utf8_byte_is_a_row_error_naming_encoding_and_offset():
    with pytest.raises(v.RowError) as caught:
        v.decode_line(b"a,1,2,caf\xe9,1 2 3")
    err = caught.value
    assert (err.field, err.reason) == ("<row>", "encoding_error")
    assert "UTF-8" in err.detail and "0xe9" in err.detail and "byte offset 9" in err.detail


def test_duplicate_csv_header_column_is_an_error_naming_it():
    with pytest.raises(ValueError, match="'lat' appears 2 times"):
        v.split_header("id,lon,lat,lat,features")


@pytest.mark.parametrize("changes, expected", [
    ({"split": "training"}, ("split", "bad_split")),
    ({"split": "train", "label": ""}, ("split", "bad_split")),  # unlabeled rows: pretrain only
    ({"subset": "0"}, ("subset", "bad_subset")),
    ({"subset": "1.5"}, ("subset", "bad_subset")),
    ({"subset": "some"}, ("subset", "bad_subset")),
])
def test_bad_split_and_subset_cells(changes, expected):
    assert _reason(_row(**changes)) == expected


def test_split_and_subset_cells_are_carried():
    rec = v.validate_row(_row(split="VAL", subset="0.05"), 3, VOCAB, "/base")
    assert rec["split"] == "val" and rec["subset"] == 0.05
    rec = v.validate_row(_row(split="", subset=""), 3, VOCAB, "/base")
    assert rec["split"] is None and rec["subset"] is None
    rec = v.validate_row(_row(label="", split="pretrain"), 3, VOCAB, "/base")
    assert rec["split"] == "pretrain" and rec["label"] is None
