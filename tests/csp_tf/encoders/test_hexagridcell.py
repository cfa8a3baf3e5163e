"""hexagridcell features (docs/reference.md §2.6)."""

import math

import numpy as np
import pytest

from csp_tf.encoders.hexagridcell import HexaGridCellEncoder


def test_dim_and_validation():
    assert HexaGridCellEncoder(frequency_num=32).embedding_dim == 192
    with pytest.raises(ValueError, match=">= 2"):
        HexaGridCellEncoder(frequency_num=1)


def test_hand_values(encode):
    # S = 2, λ_max = 4: f = [1, 1/4] ([QUIRK] min_radius plays no part); index c·3S + 3s + k.
    enc = HexaGridCellEncoder(frequency_num=2, max_radius=4.0)
    t1, t2 = 2 * math.pi / 3, 4 * math.pi / 3

    def by_hand(lon, lat):
        return [math.sin(a + t) for c in (lon, lat) for a in (c, c / 4) for t in (0, t1, t2)]

    got = encode(enc, [(0, 0), (90, 45), (-120.5, -33.25)])
    for row, pt in zip(got, [(0, 0), (90, 45), (-120.5, -33.25)]):
        np.testing.assert_allclose(row, by_hand(*pt), atol=1e-6)


def test_config_has_no_min_radius():
    from csp_tf.configs import PositionEncoderConfig

    from csp_tf.encoders import build_position_encoder

    a = build_position_encoder(PositionEncoderConfig("hexagridcell", frequency_num=3, max_radius=9))
    b = HexaGridCellEncoder(frequency_num=3, max_radius=9)
    assert not hasattr(PositionEncoderConfig("hexagridcell").options, "min_radius")
    pts = np.array([[12.5, -3.0]], np.float32)
    np.testing.assert_array_equal(a(pts).numpy(), b(pts).numpy())
    np.testing.assert_allclose(a._freqs.numpy(), [1.0, 1 / 3, 1 / 9])
