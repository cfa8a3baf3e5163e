"""nerf (docs/reference.md §13.3)."""

import numpy as np

from csp_tf.encoders.nerf import NeRFEncoder


def test_vectors(encode):
    enc = NeRFEncoder(frequency_num=2)
    assert enc.embedding_dim == 12 and NeRFEncoder().embedding_dim == 96
    got = encode(enc, [(0, 0), (90, 45)])
    np.testing.assert_allclose(got[0], [0, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(got[1], [0, 0, 0.7956932, -0.9639025, 0.7956932, -0.9639025,
                                        1, 1, -0.6056999, -0.2662553, -0.6056999, -0.2662553], atol=1e-6)


def test_high_frequencies_and_poles(encode):
    enc = NeRFEncoder(frequency_num=16)  # f_15 = π·2^15 ≈ 1.03e5: float64 inside
    got = encode(enc, [(-120.5, -33.25), (10, 90), (-170, 90)])
    assert np.all(np.isfinite(got)) and np.all(np.abs(got) <= 1)
    # at the pole x, y ~ 6e-17, so even f_15·x ~ 1e-11: the features do not depend on lon.
    np.testing.assert_allclose(got[1], got[2], atol=1e-6)
