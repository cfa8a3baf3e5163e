"""wrap / geo_net_fft features (SPEC §1, §2.10; ENCODERS_EXTRA §2)."""

import numpy as np
import pytest

from csp_tf.encoders.wrap import GeoNetFFTEncoder, WrapEncoder


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
