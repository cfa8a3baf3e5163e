"""The unlabeled pool of the places set (``--unlabeled N``), built from the stand-in wheels
(conftest.py): area-uniform land points with the build's own features, deterministic, nested,
and read by pre-training only once ingested."""

from __future__ import annotations

import csv
import io
import json
import os

import numpy as np
import pytest

from csp_tf.data.errors import DataError
from csp_tf.datasets import features, land_pool, places, sources

POOL = 700


def _rows(out):
    with open(os.path.join(out, "manifest.csv"), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def pooled(standin, tmp_path_factory):
    cache, srcs = standin
    out = str(tmp_path_factory.mktemp("places_pool"))
    info = places.build_places(out, cache, srcs, unlabeled=POOL, log=lambda *_: None)
    return out, info


@pytest.fixture(scope="module")
def surroundings(standin):
    cache, srcs = standin
    return features.Surroundings(places.read_rasters(sources.fetch_all(srcs, cache)))


def test_pool_rows_follow_the_labeled_rows_unchanged(built, pooled):
    with open(os.path.join(built[0], "manifest.csv"), encoding="utf-8") as f:
        labeled = f.read()
    with open(os.path.join(pooled[0], "manifest.csv"), encoding="utf-8") as f:
        both = f.read()
    assert both.startswith(labeled)
    pool = _rows(pooled[0])[built[1]["rows"]:]
    assert len(pool) == POOL == pooled[1]["unlabeled"]["rows"]
    assert [r["id"] for r in pool] == [f"land{i:09d}" for i in range(POOL)]
    assert all(r["label"] == "" and r["subset"] == "" and r["split"] == "pretrain" for r in pool)
    for name in ("labels.txt", "sources.json"):  # the pool adds no class and no source
        with open(os.path.join(built[0], name)) as a, open(os.path.join(pooled[0], name)) as b:
            assert a.read() == b.read(), name
    assert {k: v for k, v in pooled[1].items() if k != "unlabeled"} == built[1]


def test_pool_points_are_on_land_with_the_features_of_their_written_coordinates(pooled, surroundings):
    pool = _rows(pooled[0])[-POOL:]
    lon = np.array([float(r["lon"]) for r in pool])
    lat = np.array([float(r["lat"]) for r in pool])
    assert all(len(r["lon"].split(".")[1]) == land_pool.COORD_DECIMALS for r in pool)
    assert surroundings.land.is_land(lon, lat).all()
    _, expected = surroundings.matrix(lon, lat)
    written = np.array([[float(v) for v in r["features"].split(" ")] for r in pool])
    np.testing.assert_allclose(written, expected, rtol=1e-4, atol=1e-12)  # 5 significant digits
    assert written[:, 10].min() == 1.0  # land.is_land
    stats = pooled[1]["unlabeled"]["feature_stats"]
    np.testing.assert_allclose(stats["mean"], expected.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["std"], expected.std(0), atol=1e-6)


def test_points_are_uniform_by_area_not_by_latitude():
    class AllLand:
        def is_land(self, lon, lat):
            return np.ones(len(lon), bool)

    lat = np.concatenate([b[3] for b in land_pool.land_points(AllLand(), 200_000, seed=3)])
    lon = np.concatenate([b[2] for b in land_pool.land_points(AllLand(), 200_000, seed=3)])
    assert len(lat) == 200_000 and np.abs(lat).max() <= 90 and np.abs(lon).max() <= 180
    # area within |lat| < 30° is sin 30° = 1/2 of the sphere (uniform latitudes would give 1/3)
    assert abs(np.mean(np.abs(lat) < 30) - 0.5) < 0.005
    assert abs(np.mean(np.sin(np.radians(lat)))) < 0.005 and abs(np.mean(lon)) < 1.5


def test_land_share_of_the_draws_is_the_masks(pooled, surroundings):
    draws = np.random.default_rng(9).random((200_000, 2))
    lon, lat = -180 + 360 * draws[:, 0], np.degrees(np.arcsin(2 * draws[:, 1] - 1))
    share = surroundings.land.is_land(lon, lat).mean()
    info = pooled[1]["unlabeled"]
    assert info["candidates_drawn"] == land_pool.DRAW_BLOCK  # 700 land points fit in one block
    assert abs(info["land_share_of_draws"] - share) < 0.01


def test_pool_is_deterministic_nested_and_independent_of_the_chunk_size(surroundings):
    def pool(n, seed=0, chunk=land_pool.CHUNK):
        f = io.StringIO()
        land_pool.write_pool(f, surroundings, n, seed, chunk=chunk, log=lambda *_: None)
        return f.getvalue()

    big = pool(30_000)
    assert pool(30_000, chunk=4096) == big            # chunks change nothing
    assert big.startswith(pool(1_000))                 # a smaller pool is a prefix
    assert big.count("\n") == 30_000
    other = pool(1_000, seed=1)
    assert other != big[:len(other)]                  # the seed picks the points


def test_sea_keep_adds_sea_points_at_its_rate_and_leaves_the_land_only_pool_alone(surroundings):
    def pool(n, sea_keep, seed=0):
        f = io.StringIO()
        info = land_pool.write_pool(f, surroundings, n, seed, log=lambda *_: None,
                                    sea_keep=sea_keep)
        return list(csv.reader(io.StringIO(f.getvalue()))), info

    land_only, land_info = pool(20_000, 0.0)
    assert "sea_keep" not in land_info and land_only[0][0] == "land000000000"
    mixed, info = pool(20_000, 0.25)
    assert [r[0] for r in mixed[:2]] == ["pool000000000", "pool000000001"]
    lon = np.array([float(r[1]) for r in mixed])
    lat = np.array([float(r[2]) for r in mixed])
    on_land = surroundings.land.is_land(lon, lat)
    assert info["land_rows"] == int(on_land.sum()) and info["sea_rows"] == int((~on_land).sum())
    assert info["sea_keep"] == 0.25 and "sea_keep 0.25" in info["rule"]
    # kept sea / kept land = 0.25 · P(sea) / P(land), P from the draws themselves
    share = info["land_share_of_draws"]
    expected = 0.25 * (1 - share) / share
    assert abs(info["sea_rows"] / info["land_rows"] - expected) < 0.1 * expected
    sea_rows = np.flatnonzero(~on_land)
    is_land_col = np.array([float(mixed[i][4].split(" ")[10]) for i in sea_rows[:50]])
    assert (is_land_col == 0).all()  # the features are read at the sea point itself
    again, _ = pool(5_000, 0.25)
    assert again == mixed[:5_000]  # deterministic and nested
    with pytest.raises(ValueError, match="sea_keep=1.5"):
        pool(10, 1.5)


def test_pool_size_is_checked(standin, tmp_path):
    cache, srcs = standin
    with pytest.raises(DataError, match="unlabeled=-1: the pool size must be >= 0"):
        places.build_places(str(tmp_path / "o"), cache, srcs, unlabeled=-1)


def test_cli_passes_the_pool_size(monkeypatch, tmp_path, capsys):
    from csp_cli import main

    seen = {}
    monkeypatch.setattr(places, "build_places", lambda out, cache, **kw: seen.update(kw))
    assert main(["dataset", "build", "places", "--out", str(tmp_path), "--unlabeled", "5000"]) == 0
    assert seen["unlabeled"] == 5000
    assert main(["dataset", "build", "places", "--out", str(tmp_path), "--unlabeled", "-3"]) == 2
    assert "--unlabeled -3: must be >= 0" in capsys.readouterr().err
    assert main(["dataset", "build", "places", "--out", str(tmp_path), "--unlabeled", "50",
                 "--unlabeled-sea-keep", "0.1"]) == 0
    assert seen["sea_keep"] == 0.1
    assert main(["dataset", "build", "places", "--out", str(tmp_path), "--unlabeled", "50",
                 "--unlabeled-sea-keep", "2"]) == 2
    assert "--unlabeled-sea-keep 2.0: a probability in [0, 1]" in capsys.readouterr().err


@pytest.mark.e2e
def test_ingested_pool_feeds_pretraining_only(pooled, tmp_path):
    """Through `csp-tf ingest`: the pool lands in the pretrain split; pre-training's stream holds
    it plus train, while fine-tuning, its probe and memory, and evaluation never see it."""
    from csp_tf.configs import get_preset
    from csp_tf.data.ingest import run_ingest
    from csp_tf.train.data_root import DataRoot, stage_inputs

    out, info = pooled
    with open(os.path.join(out, "labels.txt")) as f:
        class_names = f.read().split()
    summary = run_ingest(os.path.join(out, "manifest.csv"), str(tmp_path / "data"),
                         places.FEATURE_DIM, class_names=class_names, num_shards=2, in_process=True)
    assert summary["rows_out"]["pretrain"] == POOL and sum(summary["rejected"].values()) == 0
    root = DataRoot.open(str(tmp_path / "data"))
    assert root.rows("pretrain") == POOL and root.rows("train") == info["splits"]["train"]
    cfg = root.configure(get_preset("demo").override({"finetune.label_ratio": 1.0,
                                                      "finetune.image_classifier_labels": "all"}))
    pre = stage_inputs(cfg, root, "pretrain")["stage_input"]
    assert pre.num_examples == POOL + info["splits"]["train"]
    batch = next(iter(pre.dataset_fn(0).unbatch().batch(10**6)))
    assert int((batch["label"] < 0).numpy().sum()) == POOL
    fine = stage_inputs(cfg, root, "finetune")
    assert fine["stage_input"].num_examples == info["splits"]["train"]
    assert fine["image_input"].num_examples == info["splits"]["train"]
    for name in ("train", "val", "test"):  # every labeled input, evaluation's included
        ids = root.labeled(name)["id"]
        assert len(ids) == info["splits"][name] and not any(i.startswith("land") for i in ids)
    with open(tmp_path / "data" / "metadata.json") as f:
        assert json.load(f)["splits"]["pretrain"]["rows"] == POOL


def test_control_labels_get_the_same_pool(standin, pooled, tmp_path):
    cache, srcs = standin
    out = str(tmp_path / "haze")
    info = places.build_places(out, cache, srcs, label="haze_peak_month", unlabeled=50,
                               log=lambda *_: None)
    assert info["label"] == "haze_peak_month" and info["unlabeled"]["rows"] == 50
    assert _rows(out)[-50:] == _rows(pooled[0])[-POOL:][:50]  # a prefix of the country build's
