"""theory / theorynorm / theorydiag features (docs/reference.md §2.4, §2.5)."""

import math

import numpy as np

from csp_tf.encoders.theory import TheoryDiagEncoder, TheoryEncoder, TheoryNormEncoder

R3 = math.sqrt(3.0) / 2.0


def _theory_by_hand(lon, lat, freqs):
    q = [lon, -lon / 2 + lat * R3, -lon / 2 - lat * R3]
    out = []
    for f in freqs:
        for qj in q:
            out += [math.sin(qj * f), math.cos(qj * f)]
    return out


def test_dim():
    assert TheoryEncoder(frequency_num=32).embedding_dim == 192
    assert TheoryNormEncoder(frequency_num=2, min_radius=0.1, max_radius=1).embedding_dim == 12


def test_hand_values(encode):
    # S = 2, λ = 1..4 degrees: f = [1, 1/4]; index 6s + 2j + k.
    enc = TheoryEncoder(frequency_num=2, min_radius=1.0, max_radius=4.0)
    s, c = math.sin, math.cos
    q2, q3 = -45 + 45 * R3, -45 - 45 * R3  # at (90, 45)
    expected_90_45 = [s(90), c(90), s(q2), c(q2), s(q3), c(q3),
                      s(22.5), c(22.5), s(q2 / 4), c(q2 / 4), s(q3 / 4), c(q3 / 4)]
    got = encode(enc, [(0, 0), (90, 45), (-120.5, -33.25)])
    np.testing.assert_allclose(got[0], [0, 1] * 6, atol=1e-7)
    np.testing.assert_allclose(got[1], expected_90_45, atol=1e-6)
    np.testing.assert_allclose(got[2], _theory_by_hand(-120.5, -33.25, [1.0, 0.25]), atol=1e-6)


def test_theorynorm_uses_radians(encode):
    enc = TheoryNormEncoder(frequency_num=2, min_radius=0.5, max_radius=2.0)  # f = [2, 1/2] per radian
    d2r = math.pi / 180
    got = encode(enc, [(90, 45), (-120.5, -33.25)])
    for row, (lon, lat) in zip(got, [(90, 45), (-120.5, -33.25)]):
        np.testing.assert_allclose(row, _theory_by_hand(lon * d2r, lat * d2r, [2.0, 0.5]), atol=1e-6)


def test_theorydiag_features_equal_theory(encode):
    kw = dict(frequency_num=3, min_radius=0.1, max_radius=360.0)
    pts = [(90, 45), (-120.5, -33.25)]
    np.testing.assert_array_equal(encode(TheoryDiagEncoder(**kw), pts), encode(TheoryEncoder(**kw), pts))
