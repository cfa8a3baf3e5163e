"""sincos: libm-accurate sin and cos of float64 angles from one argument reduction."""

import math

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.encoders.gridcell import GridCellEncoder
from csp_tf.encoders.sincos import in_xla_context, sin_cos, sincos


def _angles():
    rng = np.random.default_rng(0)
    # The CSP range (|lon·f_0| ≤ 1800 rad), small angles, and every quadrant boundary k·π/2.
    return np.concatenate([rng.uniform(-2000.0, 2000.0, 200_000), rng.uniform(-4.0, 4.0, 20_000),
                           np.arange(-1300, 1301) * (math.pi / 2), [0.0, -0.0, 1e-300]])


@pytest.mark.parametrize("jit", [False, True])
def test_matches_libm_to_float64_precision(jit):
    a = _angles()
    s, c = tf.function(sincos, jit_compile=jit)(tf.constant(a))
    np.testing.assert_allclose(s.numpy(), np.sin(a), rtol=0, atol=4.5e-16)
    np.testing.assert_allclose(c.numpy(), np.cos(a), rtol=0, atol=4.5e-16)
    # Cast to float32 as the encoders do: equal to the libm features but for rare rounding ties
    # (one float32 ulp of the value; near a zero crossing that is far below 1e-7).
    for got, ref in ((s.numpy(), np.sin(a)), (c.numpy(), np.cos(a))):
        got32, ref32 = got.astype(np.float32), ref.astype(np.float32)
        assert np.mean(got32 != ref32) < 1e-4
        np.testing.assert_allclose(got32, ref32, rtol=0, atol=6e-8)


def test_quadrant_signs():
    k = np.arange(-8, 9, dtype=np.float64)
    a = k * (math.pi / 2) + 0.3  # one angle inside every quadrant, negative ones included
    s, c = sincos(tf.constant(a))
    np.testing.assert_allclose(s.numpy(), np.sin(a), atol=1e-15)
    np.testing.assert_allclose(c.numpy(), np.cos(a), atol=1e-15)


def test_non_finite_angles_give_nan():
    s, c = sincos(tf.constant([np.nan, np.inf, -np.inf], tf.float64))
    assert np.all(np.isnan(s.numpy())) and np.all(np.isnan(c.numpy()))


def test_gridcell_features_equal_libm_ones():
    enc = GridCellEncoder(frequency_num=32, min_radius=0.1, max_radius=360.0)
    rng = np.random.default_rng(1)
    pts = np.stack([rng.uniform(-180, 180, 2000), rng.uniform(-90, 90, 2000)], 1).astype(np.float32)
    angles = pts.astype(np.float64)[:, :, None] * np.asarray(enc.frequencies)
    ref = np.stack([np.sin(angles), np.cos(angles)], -1).reshape(len(pts), -1).astype(np.float32)
    got = enc(pts).numpy()
    assert np.mean(got != ref) < 1e-4
    np.testing.assert_allclose(got, ref, rtol=0, atol=6e-8)


def test_polynomial_path_only_under_xla():
    seen = []

    def probe():
        seen.append(in_xla_context())
        return tf.constant(0)

    probe()
    tf.function(probe)()
    tf.function(probe, jit_compile=True)()
    tf.function(lambda: tf.function(probe, jit_compile=True)())()
    assert seen == [False, False, True, True]
    a = tf.constant(_angles()[:1000])
    eager = [t.numpy() for t in sin_cos(a)]
    np.testing.assert_array_equal(eager[0], np.sin(a.numpy()))  # libm's kernels outside XLA
    xla = [t.numpy() for t in tf.function(sin_cos, jit_compile=True)(a)]
    np.testing.assert_allclose(xla[0], eager[0], rtol=0, atol=4.5e-16)
