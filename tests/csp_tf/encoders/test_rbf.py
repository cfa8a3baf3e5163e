"""rbf (docs/reference.md §2.8) and its anchor samplers."""

import math

import numpy as np
import pytest

from csp_tf.configs import PositionEncoderConfig
from csp_tf.encoders import build_position_encoder
from csp_tf.encoders.rbf import RBFEncoder, sample_rbf_anchor_pts, uniform_sphere_anchor_pts


def test_hand_values(encode):
    anchors = [(0.0, 0.0), (90.0, 40.0), (-120.0, -33.0)]
    enc = RBFEncoder(rbf_kernel_size=2.0, anchor_pts=anchors)
    assert enc.embedding_dim == 3
    got = encode(enc, [(0, 0), (90, 45), (-120.5, -33.25)])

    def phi(p, a):  # exp(-‖x - a‖² / (2σ²)), degrees
        return math.exp(-((p[0] - a[0]) ** 2 + (p[1] - a[1]) ** 2) / (2 * 2.0 ** 2))

    expected = [[phi(p, a) for a in anchors] for p in [(0, 0), (90, 45), (-120.5, -33.25)]]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-30)
    assert got[1, 1] == pytest.approx(math.exp(-25 / 8), rel=1e-6)


def test_default_anchors_are_seeded_and_area_uniform():
    a = uniform_sphere_anchor_pts(2000, seed=1)
    assert a.shape == (2000, 2)
    np.testing.assert_array_equal(a, uniform_sphere_anchor_pts(2000, seed=1))
    assert np.all(np.abs(a[:, 0]) <= 180) and np.all(np.abs(a[:, 1]) <= 90)
    # area-uniform: sin(lat) ~ U[-1, 1], so a quarter of the points lie above 30°N.
    assert np.mean(a[:, 1] > 30) == pytest.approx(0.25, abs=0.04)
    enc = RBFEncoder(num_rbf_anchor_pts=7, seed=4)
    np.testing.assert_array_equal(np.array(enc.anchor_pts), uniform_sphere_anchor_pts(7, seed=4))
    assert RBFEncoder().embedding_dim == 200


def test_sample_from_training_locations():
    locs = np.stack([np.arange(10.0), np.arange(10.0) / 2], axis=1)
    locs[3] = np.nan
    got = sample_rbf_anchor_pts(locs, 9, seed=2)
    assert got.shape == (9, 2) and np.all(np.isfinite(got))
    assert len({tuple(r) for r in got}) == 9  # without replacement
    np.testing.assert_array_equal(got, sample_rbf_anchor_pts(locs, 9, seed=2))
    with pytest.raises(ValueError, match="at least"):
        sample_rbf_anchor_pts(locs, 10)


def test_config_anchors_data_is_the_default_and_needs_locations():
    cfg = PositionEncoderConfig(type="rbf", num_rbf_anchor_pts=5, rbf_kernel_size=3.0, seed=9)
    assert cfg.anchors == "data"  # docs/reference.md §2.8: anchors are training locations
    with pytest.raises(ValueError, match="anchors='data' needs anchor_pts"):
        build_position_encoder(cfg)
    cfg.anchors = "uniform"
    enc = build_position_encoder(cfg)
    assert enc.embedding_dim == 5 and enc.rbf_kernel_size == 3.0
    np.testing.assert_array_equal(np.array(enc.anchor_pts), uniform_sphere_anchor_pts(5, seed=9))
    cfg.anchors, cfg.num_rbf_anchor_pts, cfg.anchor_pts = "data", 2, [[1.0, 2.0], [3.0, 4.0]]
    enc2 = build_position_encoder(cfg)
    assert enc2.embedding_dim == 2 and enc2.anchor_pts == [[1, 2], [3, 4]]


def test_data_root_configure_samples_anchors_from_the_train_split(tmp_path):
    """The data root's train locations become the anchors, written into the config."""
    from csp_tf.configs import ExperimentConfig
    from csp_tf.data.ingest import run_ingest
    from csp_tf.data.world import generate_world
    from csp_tf.train.data_root import DataRoot

    world = generate_world(str(tmp_path / "world"), "tiny", seed=5, feature_dim=8)
    root = str(tmp_path / "data")
    run_ingest(world["manifest"], root, feature_dim=8, class_names=world["class_names"],
               num_shards=1, in_process=True)
    cfg = ExperimentConfig().override({"location_encoder.position.type": "rbf",
                                       "location_encoder.position.rbf.num_rbf_anchor_pts": 4,
                                       "location_encoder.position.rbf.seed": 3})
    data = DataRoot.open(root)
    got = data.configure(cfg).location_encoder.position.anchor_pts
    train = data.labeled("train")["lon_lat"]
    np.testing.assert_array_equal(got, sample_rbf_anchor_pts(train, 4, seed=3))


def test_validation():
    with pytest.raises(ValueError, match="anchors given"):
        RBFEncoder(num_rbf_anchor_pts=3, anchor_pts=[(0, 0)])
    with pytest.raises(ValueError, match="finite"):
        RBFEncoder(anchor_pts=[(0, np.nan)])
