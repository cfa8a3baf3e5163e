"""The scikit-learn baselines: features, selection on val, fused products, in every table."""

import numpy as np

from csp_tf.experiments.baselines import BaselineSuite, multiscale_sincos, unit_sphere
from csp_tf.experiments.methods import BASELINE_METHODS, get_method, parse_methods, with_baselines


def test_unit_sphere_and_sincos_features():
    p = unit_sphere(np.array([[0.0, 0.0], [90.0, 0.0], [0.0, 90.0]]))
    np.testing.assert_allclose(p, [[1, 0, 0], [0, 1, 0], [0, 0, 1]], atol=1e-12)
    f = multiscale_sincos(np.array([[90.0, 0.0]]), scales=2, min_deg=180.0, max_deg=360.0)
    # lon 90° at wavelengths 180° and 360°: sin(π)=0, sin(π/2)=1; cos(π)=-1, cos(π/2)=0
    np.testing.assert_allclose(f[0, [0, 1]], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(f[0, [4, 5]], [-1.0, 0.0], atol=1e-12)


def _world(rng, n):
    """Two regions (west/east of 0°), image features that hint at a third label split."""
    lon = rng.uniform(-60, 60, n)
    lat = rng.uniform(-30, 30, n)
    y = (lon > 0).astype(int) * 2 + (rng.random(n) < 0.5)
    feats = np.stack([y % 2 + rng.normal(0, 0.3, n), rng.normal(0, 1, n)], 1) * 10 + 3
    return {"lon_lat": np.stack([lon, lat], 1), "image_features": feats, "label": y}


def test_suite_picks_on_val_and_fuses():
    rng = np.random.default_rng(0)
    tr, va, te = _world(rng, 400), _world(rng, 300), _world(rng, 300)
    suite = BaselineSuite(4, np.array([3.0, 3.0]), np.array([10.0, 10.0])).fit(tr, va)
    s = suite.scores(te)
    acc = {k: np.mean(np.argmax(v, 1) == te["label"]) for k, v in s.items()}
    assert 0.4 < acc["knn_sphere"] < 0.6 and 0.4 < acc["lr_image"] < 0.6  # each sees half
    assert acc["lr_image_x_knn"] > 0.85 and acc["lr_image_x_lr_sincos"] > 0.85
    assert suite.chosen["knn_sphere"]["k"] in (1, 3, 5, 10, 20, 50)
    assert set(suite.chosen) == {"knn_sphere", "lr_sincos", "lr_image"}


def test_every_table_carries_the_baselines():
    names = [m.name for m in with_baselines(parse_methods("csp"))]
    assert names[0] == "csp" and set(BASELINE_METHODS) <= set(names)
    assert get_method("knn_sphere").score == "location"
    assert get_method("img_only").score == "image" and get_method("csp").score == "fused"
