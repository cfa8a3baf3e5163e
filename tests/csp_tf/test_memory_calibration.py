"""Choosing the place memory's vote on val, and the fine-tuning stage that fills it."""

import json

import numpy as np
import pytest

from csp_tf.memory_calibration import add_place_memory, select_place_memory, vote_counts


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _fake_neighbours(rng, labels, agree, n_classes, k=10):
    """k neighbours per row; each carries the row's label with probability ``agree``."""
    same = rng.random((len(labels), k)) < agree
    neighbour_labels = np.where(same, labels[:, None], rng.integers(0, n_classes, (len(labels), k)))
    distance = np.sort(rng.uniform(0.5, 50.0, (len(labels), k)), axis=1)
    return distance, neighbour_labels


@pytest.mark.parametrize("agree", [0.8, 0.0])
def test_the_memory_is_used_where_neighbours_inform_and_never_hurts_on_val(agree):
    rng = np.random.default_rng(0)
    n, c = 1500, 6
    y = rng.integers(0, c, n)
    network = _softmax(1.0 * np.eye(c)[y] + rng.normal(0, 1.0, (n, c)))
    distance, labels = _fake_neighbours(rng, y, agree, c)
    out = select_place_memory(network, distance, labels, y)
    assert out["val_top1"] >= out["val_network_top1"]
    if agree:
        assert out["k"] > 0 and out["val_top1"] > out["val_network_top1"] + 10
    else:  # random labels: at most a near-off mix that flips a few val rows by chance
        assert out["k"] == 0 or out["concentration"] >= 10.0
        assert out["val_top1"] - out["val_network_top1"] < 0.5


def test_vote_counts_weight_by_inverse_distance_power():
    distance = np.array([[1.0, 2.0, 4.0]])
    labels = np.array([[0, 1, 0]])
    np.testing.assert_allclose(vote_counts(distance, labels, 3, 1.0, 2), [[1.25, 0.5]])
    np.testing.assert_allclose(vote_counts(distance, labels, 2, 0.0, 2), [[1.0, 1.0]])
    # a place at the query's own coordinates counts as 1 m away, not infinitely close
    np.testing.assert_allclose(vote_counts(np.zeros((1, 1)), np.zeros((1, 1), int), 1, 1.0, 1),
                               [[1000.0]])


def _checkerboard(n, seed):
    """4 classes on a 2° checkerboard: labels a smooth few-epoch network cannot draw."""
    rng = np.random.default_rng(seed)
    lon_lat = np.c_[rng.uniform(-20, 20, n), rng.uniform(-20, 20, n)].astype(np.float32)
    cell = np.floor(lon_lat / 2.0).astype(int)
    label = ((cell[:, 0] % 2) * 2 + (cell[:, 1] % 2)).astype(np.int64)
    feats = rng.normal(size=(n, 8)).astype(np.float32)
    return {"lon_lat": lon_lat, "image_features": feats, "label": label}


def test_finetune_fills_and_tunes_the_memory_and_a_rerun_keeps_it(tiny_config, tmp_path):
    from csp_tf.evaluate import evaluate_model
    from csp_tf.train import finetune, from_arrays

    train, val, test = _checkerboard(1500, 0), _checkerboard(600, 1), _checkerboard(600, 2)
    memory_rows = dict(train, lon_lat=train["lon_lat"].copy())
    memory_rows["lon_lat"][0] = np.nan  # a row without a location: not a place in the memory
    tiny_config.finetune.epochs = 2

    def run():
        return finetune(tiny_config, from_arrays(train, 64), from_arrays(train, 64),
                        str(tmp_path), image_arrays=train, validation=val,
                        memory_arrays=memory_rows)

    result = run()
    model = result.model
    assert model.place_memory.size == 1499
    entry = [h for h in result.history if h.get("stage") == "place_memory"][0]
    assert entry["k"] > 0 and entry["val_top1"] > entry["val_network_top1"] + 10
    metrics = evaluate_model(model, test)
    assert metrics["location"]["top1"] > metrics["location_network"]["top1"] + 10
    saved = json.load(open(tmp_path / "history.json"))
    assert any(h.get("stage") == "place_memory" for h in saved)
    again = run()  # a finished stage is restored, memory and vote included
    np.testing.assert_array_equal(again.model.place_memory.params.numpy(),
                                  model.place_memory.params.numpy())
    np.testing.assert_array_equal(again.model.place_memory.points.numpy(),
                                  model.place_memory.points.numpy())


def test_add_place_memory_copies_every_weight(tiny_config, tmp_path):
    import tensorflow as tf

    from csp_tf.train import finetune, from_arrays

    train, val = _checkerboard(800, 3), _checkerboard(400, 4)
    tiny_config.finetune.epochs = 1
    tiny_config.finetune.place_memory = "off"
    model = finetune(tiny_config, from_arrays(train, 64), from_arrays(train, 64), str(tmp_path),
                     image_arrays=train, validation=val).model
    assert model.place_memory is None
    new = add_place_memory(model, train, val)
    q = tf.constant(val["lon_lat"])
    np.testing.assert_array_equal(new.location_probs(q, memory=False).numpy(),
                                  model.location_probs(q).numpy())
    np.testing.assert_array_equal(new.image_probs(val["image_features"]).numpy(),
                                  model.image_probs(val["image_features"]).numpy())
    assert new.place_memory.active
