"""The counter-based RNG: uniform, seed-sensitive, and bit-identical under XLA."""

import numpy as np
import tensorflow as tf

from csp_tf.random_ops import fold_in, uniform


def test_uniform_moments_and_range():
    u = uniform([200000], tf.constant([7, 9], tf.int64)).numpy()
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    hist = np.histogram(u, bins=20, range=(0, 1))[0] / len(u)
    assert np.all(np.abs(hist - 0.05) < 0.003)


def test_neighbouring_seeds_and_salts_are_uncorrelated():
    a = uniform([5000], tf.constant([1, 1], tf.int64)).numpy()
    b = uniform([5000], tf.constant([1, 2], tf.int64)).numpy()
    c = uniform([5000], fold_in(tf.constant([1, 1], tf.int64), 1)).numpy()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05 and abs(np.corrcoef(a, c)[0, 1]) < 0.05
    assert len(np.intersect1d(a, b)) < 50


def test_identical_with_and_without_xla():
    seed = tf.constant([123, 456], tf.int64)
    f = lambda: (uniform([3, 50], seed), fold_in(seed, 5))
    (u1, s1), (u2, s2) = f(), tf.function(f, jit_compile=True)()
    np.testing.assert_array_equal(u1.numpy(), u2.numpy())
    np.testing.assert_array_equal(s1.numpy(), s2.numpy())
