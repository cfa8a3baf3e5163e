"""wrap / geo_net_fft / geo_net_3d features (docs/reference.md §1, §2.10, §13.2)."""

import numpy as np
import pytest

from csp_tf.encoders.wrap import GeoNet3DEncoder, GeoNetFFTEncoder, WrapEncoder


@pytest.mark.parametrize("cls", [WrapEncoder, GeoNetFFTEncoder])
def test_vectors(cls, encode):
    got = encode(cls(), [(0, 0), (90, 45), (-120.5, -33.25)])
    np.testing.assert_allclose(got, [[0, 0, 1, 1], [1, 1, 0, 0],
                                     [-0.8616292, -0.9170601, -0.5075384, 0.3987491]], atol=1e-6)
    assert cls().embedding_dim == 4


def test_poles_coincide(encode):
    # [QUIRK] πv = 2φ: both poles map to (·, 0, ·, -1).
    north, south = encode(WrapEncoder(), [(30, 90), (30, -90)])
    np.testing.assert_allclose(north, south, atol=1e-6)
    np.testing.assert_allclose(north[[1, 3]], [0, -1], atol=1e-6)


def test_geo_net_3d_hand_values(encode):
    # [cos πu·cos πv, sin πu·cos πv, sin πv], u = lon/180, v = lat/90 (docs/reference.md §13.2).
    enc = GeoNet3DEncoder()
    assert enc.embedding_dim == 3
    got = encode(enc, [(0, 0), (90, 45), (60, 30), (30, 90), (-150, 0)])
    r3 = np.sqrt(3.0)
    np.testing.assert_allclose(got, [[1, 0, 0], [0, 0, 1], [0.25, r3 / 4, r3 / 2],
                                     [-r3 / 2, -0.5, 0], [-r3 / 2, -0.5, 0]], atol=1e-6)
    u, v = np.pi * -120.5 / 180, np.pi * -33.25 / 90
    np.testing.assert_allclose(encode(enc, [(-120.5, -33.25)])[0],
                               [np.cos(u) * np.cos(v), np.sin(u) * np.cos(v), np.sin(v)], atol=1e-6)
