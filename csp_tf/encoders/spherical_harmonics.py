"""``spherical_harmonics``: real spherical harmonics Y_l^m, SatCLIP conventions (docs/reference.md
§13.5)."""

from __future__ import annotations

import math
from typing import Dict, Tuple

import tensorflow as tf

from csp_tf.encoders.base import PositionEncoder, register_encoder

HARMONICS_CALCULATIONS = ("analytic", "closed-form")


def normalized_legendre(x: tf.Tensor, s: tf.Tensor, num_degrees: int) -> Dict[Tuple[int, int], tf.Tensor]:
    """Q_l^m = N_l^m·P̃_l^m(x) for 0 ≤ m ≤ l < num_degrees, without the Condon–Shortley phase.

    N_l^m = √((2l+1)/(4π)·(l-m)!/(l+m)!), s = √(1 - x²) ≥ 0 (passed in, so it is exact at the
    poles). The normalised three-term recurrence never forms factorials or the expanded
    monomials, so it is stable in float64 to high degree.
    """
    q = {(0, 0): tf.ones_like(x) * math.sqrt(1.0 / (4.0 * math.pi))}
    for m in range(num_degrees):
        if m > 0:
            q[(m, m)] = math.sqrt((2.0 * m + 1.0) / (2.0 * m)) * s * q[(m - 1, m - 1)]
        if m + 1 < num_degrees:
            q[(m + 1, m)] = math.sqrt(2.0 * m + 3.0) * x * q[(m, m)]
        for l in range(m + 2, num_degrees):
            a = math.sqrt((4.0 * l * l - 1.0) / (l * l - m * m))
            b = math.sqrt(((l - 1.0) ** 2 - m * m) / (4.0 * (l - 1.0) ** 2 - 1.0))
            q[(l, m)] = a * (x * q[(l - 1, m)] - b * q[(l - 2, m)])
    return q


@register_encoder("spherical_harmonics")
class SphericalHarmonicsEncoder(PositionEncoder):
    """Y_l^m for l = 0..L-1, m = -l..l (index l² + l + m): (..., 2) lon/lat degrees -> (..., L²).

    Angles [QUIRK]: ϕ = (lon + 180)·π/180 and ϑ = (lat + 90)·π/180, so x = cos ϑ = -sin(lat)
    and the south pole is at ϑ = 0. With Q_l^m as in ``normalized_legendre``:
    m > 0: √2·Q_l^m·cos(mϕ); m < 0: √2·Q_l^|m|·sin(|m|ϕ); m = 0 see below.

    ``harmonics_calculation``:
      * ``analytic`` (default, SatCLIP's released models): m = 0 is π·Q_l^0 ([QUIRK] the
        generator's ``(2l+1)/4*pi``), no Condon–Shortley phase.
      * ``closed-form``: orthonormal m = 0 and the Condon–Shortley phase (-1)^|m| for m ≠ 0.
    SatCLIP evaluates ``analytic`` from sympy-expanded monomials, which lose precision at high
    degree; this recurrence matches them to < 1e-7 for L ≤ 20 and is the more accurate beyond.
    """

    config_keys = ("legendre_polys", "harmonics_calculation")

    def __init__(self, legendre_polys: int = 10, harmonics_calculation: str = "analytic", **kwargs):
        super().__init__(**kwargs)
        if harmonics_calculation not in HARMONICS_CALCULATIONS:
            raise ValueError(f"harmonics_calculation={harmonics_calculation!r} is not one of "
                             f"{', '.join(HARMONICS_CALCULATIONS)}")
        if int(legendre_polys) < 1:
            raise ValueError(f"legendre_polys={legendre_polys} must be >= 1")
        self.legendre_polys = int(legendre_polys)
        self.harmonics_calculation = harmonics_calculation

    @property
    def embedding_dim(self) -> int:
        return self.legendre_polys ** 2

    def _encode(self, lonlat):
        phi = (lonlat[..., 0] + 180.0) * (math.pi / 180.0)
        theta = (lonlat[..., 1] + 90.0) * (math.pi / 180.0)
        q = normalized_legendre(tf.cos(theta), tf.sin(theta), self.legendre_polys)
        analytic = self.harmonics_calculation == "analytic"
        feats = []
        for l in range(self.legendre_polys):
            for m in range(-l, l + 1):
                if m == 0:
                    feats.append(math.pi * q[(l, 0)] if analytic else q[(l, 0)])
                    continue
                k = abs(m)
                scale = math.sqrt(2.0) * (1.0 if analytic else (-1.0) ** k)
                trig = tf.cos(k * phi) if m > 0 else tf.sin(k * phi)
                feats.append(scale * q[(l, k)] * trig)
        return tf.stack(feats, axis=-1)
