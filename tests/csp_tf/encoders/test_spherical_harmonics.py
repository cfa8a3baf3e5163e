"""spherical_harmonics, SatCLIP conventions (docs/reference.md §13.5)."""

import math

import numpy as np
import pytest
import scipy.special

from csp_tf.encoders.spherical_harmonics import SphericalHarmonicsEncoder

# docs/reference.md §13.5, L = 3, verbatim; index order (0,0), (1,-1), (1,0), (1,1), (2,-2) ...
# (2,2).
VECTORS = {
    ("analytic", (0, 0)): [0.8862269, 0, 0, -0.4886025, 0, 0, -0.9908318, 0, 0.5462742],
    ("closed-form", (0, 0)): [0.2820948, 0, 0, 0.4886025, 0, 0, -0.3153916, 0, 0.5462742],
    ("analytic", (90, 45)): [0.8862269, -0.3454941, -1.0854019, 0, 0, 0.5462742, 0.4954159, 0, -0.2731371],
    ("closed-form", (90, 45)): [0.2820948, 0.3454941, -0.3454941, 0, 0, -0.5462742, 0.1576958, 0, -0.2731371],
    ("analytic", (-120.5, -33.25)): [0.8862269, 0.3520716, 0.8416247, 0.207386, 0.3341487, 0.4316471,
                                     -0.097224, 0.2542596, -0.1852216],
    ("closed-form", (-120.5, -33.25)): [0.2820948, -0.3520716, 0.2678974, -0.207386, 0.3341487, -0.4316471,
                                        -0.0309474, -0.2542596, -0.1852216],
}


@pytest.mark.parametrize("mode,point", list(VECTORS), ids=str)
def test_vectors(mode, point, encode):
    enc = SphericalHarmonicsEncoder(legendre_polys=3, harmonics_calculation=mode)
    assert enc.embedding_dim == 9
    np.testing.assert_allclose(encode(enc, [point])[0], VECTORS[(mode, point)], atol=1e-6)


def _quadrature(num_degrees):
    """Gauss-Legendre in x = cos ϑ times a uniform ϕ grid: exact for degree < num_degrees products."""
    x, w = np.polynomial.legendre.leggauss(num_degrees + 1)
    phi = 2 * np.pi * np.arange(2 * num_degrees + 1) / (2 * num_degrees + 1)
    lat = -np.degrees(np.arcsin(x))  # cos ϑ = -sin(lat)
    lon = np.degrees(phi) - 180.0
    pts = np.array([(lo, la) for la in lat for lo in lon])
    weights = np.repeat(w, len(phi)) * (2 * np.pi / len(phi))
    return pts, weights


@pytest.mark.parametrize("mode", ["closed-form", "analytic"])
def test_orthonormal_up_to_high_degree(mode):
    # The recurrence stays accurate where SatCLIP's expanded monomials do not (l up to 24 here).
    L = 25
    pts, weights = _quadrature(L)
    y = SphericalHarmonicsEncoder(legendre_polys=L, harmonics_calculation=mode)(pts).numpy().astype(np.float64)
    gram = (y * weights[:, None]).T @ y
    expected = np.eye(L * L)
    if mode == "analytic":
        m0 = [l * l + l for l in range(L)]
        expected[m0, m0] = math.pi ** 2  # [QUIRK] m = 0 features are π × the orthonormal ones
    np.testing.assert_allclose(gram, expected, atol=2e-5)


def test_closed_form_matches_scipy(encode):
    # scipy's sph_harm(m, l, azimuth, polar) is complex and includes the Condon–Shortley phase.
    L = 12
    pts = [(-120.5, -33.25), (17.0, 71.5), (179.0, -88.0)]
    got = encode(SphericalHarmonicsEncoder(legendre_polys=L, harmonics_calculation="closed-form"), pts)
    for row, (lon, lat) in zip(got, pts):
        az, pol = math.radians(lon + 180), math.radians(lat + 90)
        expected = []
        for l in range(L):
            for m in range(-l, l + 1):
                y = scipy.special.sph_harm(abs(m), l, az, pol)
                expected.append(y.real if m == 0 else math.sqrt(2) * (y.real if m > 0 else y.imag))
        np.testing.assert_allclose(row, expected, atol=1e-5)


def test_poles_independent_of_lon(encode):
    enc = SphericalHarmonicsEncoder(legendre_polys=10)
    got = encode(enc, [(-170, 90), (35, 90), (-170, -90), (35, -90)])
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[0], got[1], atol=1e-5)
    np.testing.assert_allclose(got[2], got[3], atol=1e-5)


def test_validation():
    with pytest.raises(ValueError, match="harmonics_calculation"):
        SphericalHarmonicsEncoder(harmonics_calculation="sympy")
    with pytest.raises(ValueError, match="legendre_polys"):
        SphericalHarmonicsEncoder(legendre_polys=0)
