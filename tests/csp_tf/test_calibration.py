"""Fusion calibrated on val: never below the better part on val, Bayes' rule recovered."""

import numpy as np
import pytest

from csp_tf.calibration import class_log_prior, select_fusion


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def test_class_log_prior_is_laplace_smoothed():
    lp = class_log_prior(np.array([0, 0, 1]), 3)
    np.testing.assert_allclose(np.exp(lp), [3 / 6, 2 / 6, 1 / 6])


@pytest.mark.parametrize("informative", ["image", "location"])
def test_fused_top1_on_val_is_never_below_the_better_part(informative):
    rng = np.random.default_rng(0)
    n, c = 400, 6
    y = rng.integers(0, c, n)
    good = _softmax(4.0 * np.eye(c)[y] + rng.normal(0, 1.5, (n, c)))
    noise = _softmax(rng.normal(0, 3.0, (n, c)))  # an uninformative, over-confident part
    img, loc = (good, noise) if informative == "image" else (noise, good)
    out = select_fusion(img, loc, y, np.full(c, -np.log(c)))
    assert out["val_fused_top1"] >= max(out["val_image_top1"], out["val_location_top1"])
    # the useless part gets less weight than the informative one
    w_img, w_loc = out["alpha"], out["beta"]
    assert (w_img > w_loc) if informative == "image" else (w_loc > w_img)


def test_two_independent_views_gain_over_each_alone():
    rng = np.random.default_rng(1)
    n, c = 2000, 8
    y = rng.integers(0, c, n)
    a = _softmax(1.5 * np.eye(c)[y] + rng.normal(0, 1.0, (n, c)))
    b = _softmax(1.5 * np.eye(c)[y] + rng.normal(0, 1.0, (n, c)))
    out = select_fusion(a, b, y, np.full(c, -np.log(c)))
    assert out["val_fused_top1"] > max(out["val_image_top1"], out["val_location_top1"]) + 3.0
