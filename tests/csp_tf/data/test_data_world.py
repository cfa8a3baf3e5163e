"""The generated world: land ranges, look-alike groups, long tail, observer bias, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
from global_land_mask import globe

from csp_tf.data.errors import DataError
from csp_tf.data.world import angular_distance, generate_world

from data_test_helpers import read_manifest_rows


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    """The default demo world (20 species, 3000 labeled, 8000 unlabeled)."""
    out = tmp_path_factory.mktemp("small")
    world = generate_world(str(out), "small", seed=0)
    rows = read_manifest_rows(world["manifest"])
    with open(world["world"]) as f:
        meta = json.load(f)
    return world, rows, meta, np.load(world["ranges"])


def _labeled(world, rows):
    index = {name: i for i, name in enumerate(world["class_names"])}
    labeled = [r for r in rows.values() if r["label"]]
    x = np.stack([r["features"] for r in labeled])
    y = np.array([index[r["label"]] for r in labeled])
    lon_lat = np.array([[r["lon"], r["lat"]] for r in labeled])
    return x, y, lon_lat


def test_sizes_and_files(small_world):
    world, rows, meta, ranges = small_world
    assert len(rows) == 11000 and sum(1 for r in rows.values() if r["label"]) == 3000
    # 4 groups of 5 look-alikes (was 5 of 4 before the world was made harder on purpose)
    assert len(world["class_names"]) == 20 and len(meta["groups"]) == 4
    assert meta["params"]["feature_dim"] == 64
    n_lat, n_lon = len(ranges["lat"]), len(ranges["lon"])
    assert ranges["range_density"].shape == (20, n_lat, n_lon) == ranges["observation_density"].shape
    np.testing.assert_allclose(ranges["range_density"].sum(axis=(1, 2)), 1.0, rtol=1e-4)
    assert np.all(ranges["range_density"][:, ranges["land_fraction"] == 0] == 0)  # ranges on land
    assert list(ranges["class_names"]) == world["class_names"]


def test_observations_are_on_land(small_world):
    _, rows, _, _ = small_world
    lon = np.array([r["lon"] for r in rows.values()])
    lat = np.array([r["lat"] for r in rows.values()])
    assert globe.is_land(lat, lon).mean() >= 0.95


def test_look_alikes_are_hard_for_features_alone(small_world):
    """A nearest-class-mean classifier on features confuses species within a group, not across."""
    world, rows, meta, _ = small_world
    x, y, _ = _labeled(world, rows)
    group = np.array([s["group"] for s in meta["species"]])
    means = np.stack([x[y == c].mean(axis=0) for c in range(len(world["class_names"]))])
    pred = np.argmin(((x[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    wrong = pred != y
    within = np.mean(wrong & (group[pred] == group[y]))
    across = np.mean(wrong & (group[pred] != group[y]))
    assert within > 0.15 and across < 0.01 and within > 20 * max(across, 1e-3)


def _in_group_density_hits(world, rows, meta, ranges):
    """(labels, hit): does the true observation density at the point pick the species in its group?"""
    _, y, lon_lat = _labeled(world, rows)
    group = np.array([s["group"] for s in meta["species"]])
    deg = meta["params"]["grid_deg"]
    i = np.clip(((lon_lat[:, 1] + 90) // deg).astype(int), 0, len(ranges["lat"]) - 1)
    j = np.clip(((lon_lat[:, 0] + 180) // deg).astype(int), 0, len(ranges["lon"]) - 1)
    score = ranges["observation_density"][:, i, j].T
    score = np.where(group[None, :] == group[y][:, None], score, -1.0)
    return y, np.argmax(score, axis=1) == y


def _overlapping(meta):
    """Indices of species in an overlapping pair (either side)."""
    index = {s["name"]: k for k, s in enumerate(meta["species"])}
    out = set()
    for k, s in enumerate(meta["species"]):
        if s["overlaps_with"]:
            out |= {k, index[s["overlaps_with"]]}
    return out


def test_location_disambiguates_look_alikes(small_world):
    """Within a group, the true density at the point picks the right species, except for the
    look-alikes that share a range on purpose (``range_overlap``)."""
    world, rows, meta, ranges = small_world
    y, hit = _in_group_density_hits(world, rows, meta, ranges)
    shared = np.isin(y, sorted(_overlapping(meta)))
    assert hit[~shared].mean() > 0.9
    assert hit.mean() > 0.6
    # look-alikes that do not overlap live far apart: main range centres > 20 degrees apart
    for members in meta["groups"]:
        centres = [s["blobs"][0] for s in meta["species"] if s["name"] in members and not s["overlaps_with"]]
        for a in range(len(centres)):
            for b in range(a + 1, len(centres)):
                d = angular_distance(centres[a]["lon"], centres[a]["lat"], centres[b]["lon"], centres[b]["lat"])
                assert d > 20


def test_overlapping_look_alikes_stay_ambiguous(small_world):
    """Some look-alike pairs share a range: neither features nor location separate them."""
    world, rows, meta, ranges = small_world
    by_name = {s["name"]: s for s in meta["species"]}
    pairs = [(s, by_name[s["overlaps_with"]]) for s in meta["species"] if s["overlaps_with"]]
    assert len(pairs) >= 2
    for a, b in pairs:
        assert a["group"] == b["group"]
        d = angular_distance(a["blobs"][0]["lon"], a["blobs"][0]["lat"], b["blobs"][0]["lon"], b["blobs"][0]["lat"])
        assert d < 4 * meta["params"]["overlap_deg"]
    y, hit = _in_group_density_hits(world, rows, meta, ranges)
    shared = np.isin(y, sorted(_overlapping(meta)))
    assert hit[shared].mean() < 0.85  # even the true range map is unsure there


def test_no_overlap_restores_disjoint_look_alikes(tmp_path):
    generate_world(str(tmp_path), "tiny", seed=0, range_overlap=0.0)
    with open(tmp_path / "world.json") as f:
        meta = json.load(f)
    assert not any(s["overlaps_with"] for s in meta["species"])
    for members in meta["groups"]:
        centres = [s["blobs"][0] for s in meta["species"] if s["name"] in members]
        for a in range(len(centres)):
            for b in range(a + 1, len(centres)):
                assert angular_distance(centres[a]["lon"], centres[a]["lat"],
                                        centres[b]["lon"], centres[b]["lat"]) > 20


def test_long_tail(small_world):
    _, _, meta, _ = small_world
    counts = np.sort(meta["counts"]["labeled_per_class"])[::-1]
    assert counts[0] >= 8 * counts[-1]
    assert counts[:4].sum() >= 0.4 * counts.sum()  # the top 20 % of species hold >= 40 % of rows


def test_observer_bias_follows_population(small_world):
    """Observed points sit where people are: more so than points drawn from the ranges alone."""
    world, rows, _, ranges = small_world
    index = {name: i for i, name in enumerate(world["class_names"])}
    labeled = [r for r in rows.values() if r["label"]]
    lon = np.array([r["lon"] for r in labeled])
    lat = np.array([r["lat"] for r in labeled])
    species = np.array([index[r["label"]] for r in labeled])
    deg = 180.0 / len(ranges["lat"])
    pop = ranges["population"]
    at_points = pop[((lat + 90) // deg).clip(0, len(ranges["lat"]) - 1).astype(int),
                    ((lon + 180) // deg).clip(0, len(ranges["lon"]) - 1).astype(int)]
    range_only = (ranges["range_density"] * pop[None]).sum(axis=(1, 2))[species]
    assert at_points.mean() > 1.3 * range_only.mean()


def test_same_seed_same_world_other_seed_other_world(tmp_path):
    a = generate_world(str(tmp_path / "a"), "tiny", seed=3, manifest_format="parquet")
    b = generate_world(str(tmp_path / "b"), "tiny", seed=3, manifest_format="parquet")
    c = generate_world(str(tmp_path / "c"), "tiny", seed=4, manifest_format="parquet")
    with open(a["manifest"], "rb") as fa, open(b["manifest"], "rb") as fb:
        assert fa.read() == fb.read()
    ra, rb, rc = (np.load(w["ranges"]) for w in (a, b, c))
    for key in ra.files:
        np.testing.assert_array_equal(ra[key], rb[key])
    assert not np.array_equal(ra["range_density"], rc["range_density"])


@pytest.mark.parametrize("kwargs, message", [
    ({"size": "huge"}, "unknown world size"),
    ({"num_groups": 30}, "num_groups"),
    ({"range_overlap": 1.5}, "range_overlap"),
    ({"manifest_format": "xlsx"}, "manifest_format"),
    ({"grid_deg": 7.0}, "grid_deg"),
    ({"colour": "blue"}, "unknown world parameter"),
])
def test_bad_parameters(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        generate_world(str(tmp_path), **kwargs)
