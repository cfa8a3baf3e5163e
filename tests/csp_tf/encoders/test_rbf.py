"""rbf (SPEC §2.8) and its anchor samplers."""

import math

import numpy as np
import pytest

from csp_tf.configs import PositionEncoderConfig
from csp_tf.encoders.rbf import RBFEncoder, sample_rbf_anchor_pts, uniform_sphere_anchor_pts


def test_hand_values(encode):
    anchors = [(0.0, 0.0), (90.0, 40.0), (-120.0, -33.0)]
    enc = RBFEncoder(rbf_kernel_size=2.0, anchors=anchors)
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
    np.testing.assert_array_equal(np.array(enc.anchors), uniform_sphere_anchor_pts(7, seed=4))
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


def test_from_experiment_config():
    cfg = PositionEncoderConfig(type="rbf", num_rbf_anchor_pts=5, rbf_kernel_size=3.0, seed=9)
    enc = RBFEncoder.from_experiment_config(cfg)
    assert enc.embedding_dim == 5 and enc.rbf_kernel_size == 3.0
    enc2 = RBFEncoder.from_experiment_config(cfg, anchors=[(1, 2), (3, 4)])
    assert enc2.embedding_dim == 2 and enc2.anchors == [[1, 2], [3, 4]]


def test_validation():
    with pytest.raises(ValueError, match="anchors given"):
        RBFEncoder(num_rbf_anchor_pts=3, anchors=[(0, 0)])
    with pytest.raises(ValueError, match="finite"):
        RBFEncoder(anchors=[(0, np.nan)])
