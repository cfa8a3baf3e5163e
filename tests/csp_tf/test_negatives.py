"""Random-location samplers: ranges and distributions, quirks included (docs/reference.md §6)."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.negatives import sample_random_locations

N = 20000
SEED = tf.constant([3, 4], tf.int64)


def _sample(kind):
    return sample_random_locations(N, kind, SEED).numpy()


def test_sphericalold_fills_the_ellipse_only():
    x = _sample("sphericalold")
    r2 = (x[:, 0] / 180) ** 2 + (x[:, 1] / 90) ** 2
    assert np.all(r2 <= 1 + 1e-5)
    # Density ∝ 1/√(1−r²): crowded at the rim. Uniform in the disk would put 50% beyond r²=0.5.
    assert np.mean(r2 > 0.5) > 0.65
    # Never sampled: |lon| ≈ 180 away from the equator.
    assert not np.any((np.abs(x[:, 0]) > 170) & (np.abs(x[:, 1]) > 40))


def test_spherical_quirk_samples_north_east_quadrant_only():
    x = _sample("spherical")
    assert x[:, 0].min() >= 0 and x[:, 0].max() <= 180
    assert x[:, 1].min() >= 0 and x[:, 1].max() <= 90


def test_uniform_is_uniform_on_the_rectangle():
    x = _sample("uniform")
    assert abs(np.mean(np.abs(x[:, 1]) > 45) - 0.5) < 0.02


def test_spherical_fixed_is_area_uniform():
    x = _sample("spherical_fixed")
    # Area fraction with |lat| > 30° is 1 − sin(30°) = 0.5.
    assert abs(np.mean(np.abs(x[:, 1]) > 30) - 0.5) < 0.02
    assert abs(np.mean(x[:, 0] > 0) - 0.5) < 0.02
    assert np.all(np.abs(x[:, 1]) <= 90)


def test_samplers_are_deterministic_in_the_seed():
    a = sample_random_locations(10, "sphericalold", SEED).numpy()
    b = sample_random_locations(10, "sphericalold", SEED).numpy()
    c = sample_random_locations(10, "sphericalold", tf.constant([3, 5], tf.int64)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_unknown_sampler_names_the_choices():
    with pytest.raises(ValueError, match="sphericalold"):
        sample_random_locations(3, "bogus", SEED)
