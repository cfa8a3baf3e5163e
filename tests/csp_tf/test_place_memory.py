"""The place memory inside the model: exact neighbours, the vote formula, and the same answers
from the live model, the reloaded .keras file and the SavedModel."""

import os

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import ConfigError, get_preset
from csp_tf.memory_calibration import vote_counts
from csp_tf.models import build_csp_model
from csp_tf.models.loading import load_csp_model


def _model(size=300, classes=5, head="softmax"):
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = classes, 4
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    if head != "softmax":
        cfg.finetune.location_loss, cfg.finetune.place_memory = "presence", "off"
    return build_csp_model(cfg, place_memory_size=size)


def _places(rng, n):
    return np.c_[rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)]


def _haversine_km(a, b):
    a, b = np.radians(a), np.radians(b)
    h = (np.sin((b[..., 1] - a[..., 1]) / 2) ** 2
         + np.cos(a[..., 1]) * np.cos(b[..., 1]) * np.sin((b[..., 0] - a[..., 0]) / 2) ** 2)
    return 2 * 6371.0 * np.arcsin(np.sqrt(h))


def test_neighbours_are_exact_nearest_places_with_haversine_distances():
    rng = np.random.default_rng(0)
    model = _model()
    places, labels = _places(rng, 300), rng.integers(0, 5, 300)
    model.place_memory.set_places(places, labels)
    queries = _places(rng, 600).astype(np.float32)  # > QUERY_CHUNK: several chunks + a remainder
    distance, neighbour_labels = (t.numpy() for t in model.place_memory.neighbours(queries))
    full = _haversine_km(queries[:, None, :].astype(np.float64), places[None, :, :])
    order = np.argsort(full, axis=1)[:, :50]
    np.testing.assert_allclose(distance, np.take_along_axis(full, order, 1), atol=1e-6)
    np.testing.assert_array_equal(neighbour_labels, labels[order])


def test_places_metres_apart_are_ranked_by_distance():
    # In float32 dot products, places within ~2 km tie; the memory keeps them apart (float64).
    model = _model(size=3)
    places = np.array([[10.0, 45.0], [10.0003, 45.0], [10.0001, 45.0]])  # ≈ 0, 24, 8 m east
    model.place_memory.set_places(places, np.array([0, 1, 2]))
    query = np.array([[10.00004, 45.0]], np.float32)
    distance, labels = (t.numpy() for t in model.place_memory.neighbours(query))
    np.testing.assert_array_equal(labels[0], [0, 2, 1])
    np.testing.assert_allclose(distance[0], _haversine_km(
        query[0].astype(np.float64), places[[0, 2, 1]]), atol=1e-6)  # within 1 mm


def test_mixture_is_the_documented_formula_and_off_is_the_network():
    rng = np.random.default_rng(1)
    model = _model()
    places, labels = _places(rng, 300), rng.integers(0, 5, 300)
    model.place_memory.set_places(places, labels)
    q = _places(rng, 100).astype(np.float32)
    network = model.location_probs(q, memory=False).numpy()
    np.testing.assert_array_equal(model.location_probs(q).numpy(), network)  # k = 0: off
    model.place_memory.set_params(5, 1.0, 0.1)
    distance, neighbour_labels = (t.numpy() for t in model.place_memory.neighbours(q))
    votes = vote_counts(distance, neighbour_labels, 5, 1.0, 5)
    want = (0.1 * network + votes) / (0.1 + votes.sum(1, keepdims=True))
    got = model.location_probs(q).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)
    # training never sees the memory
    np.testing.assert_array_equal(model.location_probs(q, training=False, memory=False).numpy(),
                                  network)


@pytest.mark.parametrize("size", [300, 3000])  # every place scanned / pruned by caps
def test_keras_file_and_saved_model_answer_as_the_live_model(tmp_path, size):
    from csp_tf.export import write_saved_model

    rng = np.random.default_rng(2)
    model = _model(size=size)
    model.place_memory.set_places(_clustered_places(rng, size), rng.integers(0, 5, size))
    assert model.place_memory.pruned == (size > 1024)
    model.place_memory.set_params(3, 2.0, 0.3)
    kernel = model.class_head.kernel
    kernel.assign(kernel.numpy() + rng.normal(0, 1, kernel.shape).astype(np.float32))
    q = _places(rng, 50).astype(np.float32)
    want = model.location_probs(q).numpy()
    model.save(str(tmp_path / "m.keras"))
    reloaded = load_csp_model(str(tmp_path / "m.keras"))
    assert reloaded.place_memory.size == size
    np.testing.assert_array_equal(reloaded.location_probs(q).numpy(), want)
    saved = tf.saved_model.load(write_saved_model(model, str(tmp_path / "sm" / "1"), warmup=False))
    got = saved.signatures["location_prior"](lon_lat=tf.constant(q))["probabilities"].numpy()
    np.testing.assert_allclose(got, want, atol=1e-7)
    feats = rng.normal(size=(50, 4)).astype(np.float32)
    out = saved.signatures["predict_features"](image_features=tf.constant(feats),
                                               lon_lat=tf.constant(q))
    np.testing.assert_allclose(out["location_probabilities"].numpy(), want, atol=1e-7)


def test_bad_places_and_params_name_the_problem():
    model = _model(size=4)
    ok = np.zeros((4, 2))
    with pytest.raises(ValueError, match="holds 4 places"):
        model.place_memory.set_places(np.zeros((3, 2)), np.zeros(3, int))
    with pytest.raises(ValueError, match="NaN"):
        model.place_memory.set_places(np.full((4, 2), np.nan), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 5\)"):
        model.place_memory.set_places(ok, np.array([0, 1, 2, 5]))
    with pytest.raises(ValueError, match="outside"):
        model.place_memory.set_params(5, 1.0, 1.0)
    with pytest.raises(ValueError, match="concentration"):
        model.place_memory.set_params(2, 1.0, 0.0)


def test_a_memory_needs_the_softmax_head():
    with pytest.raises(ValueError, match="per-class sigmoids"):
        _model(head="presence")
    cfg = get_preset("demo")
    cfg.finetune.location_loss = "presence"
    assert not cfg.validate().uses_place_memory()  # auto: off with per-class sigmoids
    cfg.finetune.place_memory = "calibrated"
    with pytest.raises(ConfigError, match="place_memory=off"):
        cfg.validate()
    assert get_preset("demo").uses_place_memory()
    assert not get_preset("inat2018").uses_place_memory()  # parity presets: no memory


def _clustered_places(rng, n, scatter=0.2):
    """Dense clusters (towns) plus a sparse uniform scatter, like real places."""
    centres = _places(rng, 12)
    which = rng.integers(0, 12, n)
    near = centres[which] + rng.normal(0, 0.3, (n, 2))
    near[:, 1] = np.clip(near[:, 1], -89.9, 89.9)
    near[:, 0] = (near[:, 0] + 180) % 360 - 180
    lone = rng.random(n) < scatter
    near[lone] = _places(rng, int(lone.sum()))
    return near


def test_pruned_search_is_exact_on_clustered_places_for_every_batch_size():
    rng = np.random.default_rng(3)
    n = 5000
    model = _model(size=n)
    places, labels = _clustered_places(rng, n), rng.integers(0, 5, n)
    model.place_memory.set_places(places, labels)
    assert model.place_memory.pruned
    # near the clusters, in the empty space between them, and a remainder chunk
    queries = np.r_[_clustered_places(rng, 400), _places(rng, 300)].astype(np.float32)
    full = _haversine_km(queries[:, None, :].astype(np.float64), places[None, :, :])
    order = np.argsort(full, axis=1)[:, :50]
    distance, neighbour_labels = (t.numpy() for t in model.place_memory.neighbours(queries))
    np.testing.assert_allclose(distance, np.take_along_axis(full, order, 1), atol=1e-6)
    np.testing.assert_array_equal(neighbour_labels, labels[order])
    for q in (queries[:1], queries[:3], queries[400:405]):  # the scan path (≤ SCAN_BATCH) and just above
        d, _ = (t.numpy() for t in model.place_memory.neighbours(q))
        np.testing.assert_allclose(d, distance[[np.flatnonzero((queries == row).all(1))[0] for row in q]],
                                   atol=1e-9)


def test_queries_the_caps_cannot_settle_fall_back_and_stay_exact(monkeypatch):
    from csp_tf.models import place_memory as pm
    monkeypatch.setattr(pm, "CANDIDATE_BLOCKS", 8)  # 256 candidates: most queries unsettled
    rng = np.random.default_rng(4)
    n = 4000
    model = _model(size=n)
    places = _clustered_places(rng, n)
    model.place_memory.set_places(places, rng.integers(0, 5, n))
    queries = np.r_[_clustered_places(rng, 100), _places(rng, 100)].astype(np.float32)
    q = pm.unit_vectors(queries)
    centre, radius = pm.block_caps(model.place_memory.points, pm.BLOCK)
    _, _, proven = pm.pruned_search(q, model.place_memory.points, centre, radius, 50, 50)
    proven = proven.numpy()
    assert 0.1 < proven.mean() < 0.9  # both paths are taken here
    full = _haversine_km(queries[:, None, :].astype(np.float64), places[None, :, :])
    distance, _ = (t.numpy() for t in model.place_memory.neighbours(queries))
    # the settled rows (bounds trusted) and the scanned ones are both exact
    np.testing.assert_allclose(distance, np.sort(full, axis=1)[:, :50], atol=1e-6)


def test_points_in_any_order_still_give_exact_neighbours():
    # The caps come from the stored points: a memory whose points are not in k-d order (an older
    # file, or points assigned directly) is slower, never wrong.
    rng = np.random.default_rng(5)
    n = 3000
    model = _model(size=n)
    places = _clustered_places(rng, n)
    shuffled = rng.permutation(n)
    from csp_tf.coords import unit_sphere
    model.place_memory.points.assign(unit_sphere(places)[shuffled])
    queries = _places(rng, 300).astype(np.float32)
    full = _haversine_km(queries[:, None, :].astype(np.float64), places[None, :, :])
    distance, _ = (t.numpy() for t in model.place_memory.neighbours(queries))
    np.testing.assert_allclose(distance, np.sort(full, axis=1)[:, :50], atol=1e-6)


def test_kd_order_is_a_permutation_into_compact_caps():
    from csp_tf.models import place_memory as pm
    from csp_tf.coords import unit_sphere
    rng = np.random.default_rng(6)
    points = unit_sphere(_clustered_places(rng, 2000, scatter=0.0))
    order = pm.kd_order(points)
    np.testing.assert_array_equal(np.sort(order), np.arange(2000))
    _, sorted_radius = pm.block_caps(tf.constant(points[order]), pm.BLOCK)
    _, raw_radius = pm.block_caps(tf.constant(points), pm.BLOCK)
    assert np.median(sorted_radius.numpy()) < 0.05 * np.median(raw_radius.numpy())
