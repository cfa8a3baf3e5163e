"""naive (docs/reference.md §2.7)."""

import numpy as np

from csp_tf.encoders.naive import NaiveEncoder


def test_values(encode):
    got = encode(NaiveEncoder(), [(0, 0), (90, 45), (-120.5, -33.25), (180, -90)])
    np.testing.assert_allclose(got, [[0, 0], [0.5, 0.5], [-120.5 / 180, -33.25 / 90], [1, -1]], atol=1e-7)


def test_custom_map_range(encode):
    got = encode(NaiveEncoder(map_range=(0, 10, 0, 20)), [(5, 5), (10, 0)])
    np.testing.assert_allclose(got, [[0, -0.5], [1, -1]], atol=1e-7)
