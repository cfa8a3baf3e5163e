"""finetune.location_jitter and location_jitter_per_spacing: stateless Gaussian moves of the
labeled locations (one σ, or one per row from its nearest labeled neighbour), wrapped onto the
sphere, applied by the fine-tuning loss and nowhere else."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import ConfigError
from csp_tf.location_jitter import (MAX_ROW_SIGMA_DEG, SIGMA_KEY, jitter_locations, row_sigmas,
                                    wrap_lon_lat)
from csp_tf.models import build_csp_model
from csp_tf.models.layers import fold_seed
from csp_tf.train import steps
from csp_tf.train.data_root import finetune_input

SEED = tf.constant([3, 7], tf.int64)


def test_zero_sigma_returns_the_locations():
    x = tf.constant([[10.5, -20.25], [179.9, 89.9]], tf.float64)
    out = jitter_locations(x, 0.0, SEED)
    assert out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), x.numpy().astype(np.float32))


def test_moves_are_gaussian_with_the_given_sigma():
    x = tf.tile(tf.constant([[10.0, 20.0]]), [200_000, 1])
    d = jitter_locations(x, 0.5, SEED).numpy() - x.numpy()
    np.testing.assert_allclose(d.mean(0), [0.0, 0.0], atol=0.01)
    np.testing.assert_allclose(d.std(0), [0.5, 0.5], rtol=0.02)
    assert abs(np.corrcoef(d.T)[0, 1]) < 0.01
    assert 0.0024 < np.mean(np.abs(d[:, 0]) > 3 * 0.5) < 0.003  # Gaussian tails: 0.27 %


def test_draws_follow_the_seed_and_match_under_xla():
    x = tf.random.stateless_uniform((1000, 2), [0, 1], -60.0, 60.0)
    a, b = jitter_locations(x, 0.2, SEED), jitter_locations(x, 0.2, SEED)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), jitter_locations(x, 0.2, SEED + 1).numpy())
    compiled = tf.function(lambda t, s: jitter_locations(t, 0.2, s), jit_compile=True)
    np.testing.assert_allclose(compiled(x, SEED).numpy(), a.numpy(), atol=1e-4)


def test_wrapping_across_the_dateline_and_the_poles():
    out = wrap_lon_lat(tf.constant([185.0, 10.0, -181.0, 10.0]),
                       tf.constant([10.0, 95.0, -30.0, -92.0])).numpy()
    np.testing.assert_allclose(out, [[-175.0, 10.0], [-170.0, 85.0], [179.0, -30.0],
                                     [-170.0, -88.0]], atol=1e-5)
    edge = tf.constant([[179.99, 89.99], [-179.99, -89.99]] * 5000)
    moved = jitter_locations(edge, 1.0, SEED).numpy()
    assert (moved[:, 0] >= -180).all() and (moved[:, 0] < 180).all()
    assert (np.abs(moved[:, 1]) <= 90).all()


@pytest.mark.parametrize("loss", ["softmax", "presence"])
def test_the_finetune_loss_trains_on_the_jittered_locations(tiny_config, loss):
    tiny_config.finetune.location_loss = loss
    tiny_config.location_encoder.dropout = 0.0
    model = build_csp_model(tiny_config)
    batch = {"lon_lat": tf.constant([[10.0, 20.0], [-50.0, -10.0], [120.0, 45.0]]),
             "label": tf.constant([0, 1, 2], tf.int64),
             "image_features": tf.zeros((3, tiny_config.data.feature_dim))}
    seed = tf.constant([5, 9], tf.int64)
    plain = steps.make_finetune_loss(model, tiny_config.finetune)(batch, seed)[0]
    tiny_config.finetune.location_jitter = 2.0
    jittered = steps.make_finetune_loss(model, tiny_config.finetune)(batch, seed)[0]
    moved = dict(batch, lon_lat=jitter_locations(batch["lon_lat"], 2.0,
                                                 fold_seed(seed, steps._PASS_JITTER)))
    tiny_config.finetune.location_jitter = 0.0
    on_moved = steps.make_finetune_loss(model, tiny_config.finetune)(moved, seed)[0]
    assert float(jittered) != pytest.approx(float(plain), abs=1e-6)
    assert float(jittered) == pytest.approx(float(on_moved), rel=1e-6)


def test_a_negative_jitter_is_refused(tiny_config):
    tiny_config.finetune.location_jitter = -0.1
    with pytest.raises(ConfigError, match="finetune.location_jitter"):
        tiny_config.validate()


def test_row_sigmas_follow_each_place_s_nearest_labeled_neighbour():
    lon_lat = np.array([[0.0, 0.0], [0.1, 0.0], [0.3, 0.0], [0.3, 0.0], [50.0, 0.0],
                        [np.nan, np.nan]])
    sigmas = row_sigmas(lon_lat, 2.0)
    assert sigmas.dtype == np.float32
    np.testing.assert_allclose(sigmas[:4], [0.2, 0.2, 0.0, 0.0], atol=1e-5)  # duplicates: 0
    assert sigmas[4] == MAX_ROW_SIGMA_DEG  # 40° from the nearest: clipped
    assert sigmas[5] == 0.0  # no location: not moved


def test_per_row_sigmas_move_each_row_by_its_own():
    x = tf.tile(tf.constant([[10.0, 20.0], [-30.0, 5.0]]), [50_000, 1])
    sigma = tf.tile(tf.constant([0.0, 0.3]), [50_000])
    d = jitter_locations(x, sigma, SEED).numpy() - x.numpy()
    np.testing.assert_array_equal(d[0::2], 0.0)
    np.testing.assert_allclose(d[1::2].std(0), [0.3, 0.3], rtol=0.02)


def test_the_finetune_input_carries_sigmas_only_when_asked(tiny_config):
    rows = {"lon_lat": np.array([[0.0, 0.0], [0.5, 0.0], [3.0, 0.0]], np.float32),
            "image_features": np.zeros((3, 8), np.float32), "label": np.array([0, 1, 2])}
    plain = next(iter(finetune_input(rows, tiny_config.finetune, seed=0).dataset_fn(0)))
    assert SIGMA_KEY not in plain
    tiny_config.finetune.location_jitter_per_spacing = 1.0
    batch = next(iter(finetune_input(rows, tiny_config.finetune, seed=0).dataset_fn(0)))
    order = np.argsort(batch["lon_lat"].numpy()[:, 0])
    np.testing.assert_allclose(batch[SIGMA_KEY].numpy()[order], [0.5, 0.5, 2.0], atol=1e-5)


def test_per_spacing_jitter_without_the_sigma_column_is_refused(tiny_config):
    tiny_config.finetune.location_jitter_per_spacing = 1.0
    model = build_csp_model(tiny_config)
    batch = {"lon_lat": tf.constant([[10.0, 20.0]]), "label": tf.constant([0], tf.int64),
             "image_features": tf.zeros((1, tiny_config.data.feature_dim))}
    with pytest.raises(ValueError, match="finetune_input"):
        steps.make_finetune_loss(model, tiny_config.finetune)(batch, SEED)
