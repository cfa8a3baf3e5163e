"""gridcell / gridcellnorm and the shared frequency schedule (docs/reference.md §2.1-§2.3)."""

import math

import numpy as np
import pytest

from csp_tf.encoders import geometric_frequencies
from csp_tf.encoders.gridcell import GridCellEncoder, GridCellNormEncoder


def test_csp_schedule():
    f = geometric_frequencies(32, 0.1, 360.0)
    assert f.shape == (32,) and f.dtype == np.float64
    assert f[0] == pytest.approx(10.0, rel=1e-12)
    assert f[31] == pytest.approx(1.0 / 360.0, rel=1e-12)
    assert 1.0 / f[1] == pytest.approx(0.13023, abs=1e-5)
    assert np.log(f[:-1] / f[1:]) == pytest.approx(math.log(3600.0) / 31.0, rel=1e-12)  # ≈ 0.264151


def test_other_schedules():
    assert geometric_frequencies(3, 1.0, 2.0, "nerf") == pytest.approx([math.pi, 2 * math.pi, 4 * math.pi])
    r1 = geometric_frequencies(4, 1.0, 5.0, "random", seed=7)
    assert np.array_equal(r1, geometric_frequencies(4, 1.0, 5.0, "random", seed=7))
    assert np.all((r1 >= 0) & (r1 < 5.0))
    with pytest.raises(ValueError, match="freq_init"):
        geometric_frequencies(4, 1.0, 5.0, "bogus")
    with pytest.raises(ValueError, match=">= 2"):
        geometric_frequencies(1, 1.0, 5.0)


def test_dim():
    assert GridCellEncoder(frequency_num=32).embedding_dim == 128
    assert GridCellEncoder(frequency_num=3, min_radius=1, max_radius=2).embedding_dim == 12


@pytest.mark.parametrize("cls", [GridCellEncoder, GridCellNormEncoder])
def test_hand_values(cls, encode):
    # S = 2, λ = 1..4 degrees: f = [1, 1/4] rad/°, no 2π; layout lon (sin, cos)×S, then lat.
    enc = cls(frequency_num=2, min_radius=1.0, max_radius=4.0)
    s, c = math.sin, math.cos
    expected = [
        [0, 1, 0, 1, 0, 1, 0, 1],
        [s(90), c(90), s(22.5), c(22.5), s(45), c(45), s(11.25), c(11.25)],
        [s(-120.5), c(-120.5), s(-30.125), c(-30.125), s(-33.25), c(-33.25), s(-8.3125), c(-8.3125)],
    ]
    got = encode(enc, [(0, 0), (90, 45), (-120.5, -33.25)])
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_not_periodic_but_finite_at_dateline(encode):
    # f_s = 1/λ_s rad/° is not a multiple of 2π/360 in general: no continuity to test.
    enc = GridCellEncoder(frequency_num=32, min_radius=0.1, max_radius=360.0)
    got = encode(enc, [(180.0, 0.0), (-180.0, 0.0), (180.0, 90.0), (-180.0, -90.0)])
    assert np.all(np.isfinite(got))


def test_periodic_configuration_is_continuous(encode):
    # λ_min = λ_max = 180/π gives f = π/180 rad/°, i.e. one period per 360°.
    enc = GridCellEncoder(frequency_num=2, min_radius=180 / math.pi, max_radius=180 / math.pi)
    eps = 1e-3
    a, b = encode(enc, [(180 - eps, 10.0), (-180 + eps, 10.0)])
    assert np.max(np.abs(a - b)) < 2 * eps * math.pi / 180 + 1e-6


def test_random_schedule_saved_in_config():
    enc = GridCellEncoder(frequency_num=4, min_radius=1.0, max_radius=5.0, freq_init="random", seed=3)
    cfg = enc.get_config()
    assert cfg["frequencies"] == geometric_frequencies(4, 1.0, 5.0, "random", seed=3).tolist()
    assert GridCellEncoder.from_config(cfg).frequencies == enc.frequencies
