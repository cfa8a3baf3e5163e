"""Sphere2Vec: ``sphereC``, ``sphereC+``, ``sphereM``, ``sphereM+``, ``dfs`` (docs/reference.md
§13.1).

Sphere2Vec-reference (S2V) semantics: the scaled angles are λ_s = λ·f_s and φ_s = φ·f_s with λ,
φ in radians, so the radii are dimensionless multiples of one radian (r = 1: one period per 360°
of longitude), unlike ``gridcell`` whose radii are in degrees. Every encoder uses the geometric
schedule with ``min_radius`` (not TorchSpatial's r_min-free schedule for sphereM+/dfs).
Blocks are scale-major: flat index s·k + j for a block of width k.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import tensorflow as tf

from csp_tf.encoders.base import flatten_features, register_encoder
from csp_tf.encoders.scheduled import ScheduledEncoder


class SphereEncoder(ScheduledEncoder):
    """Shared schedule and angles of the Sphere2Vec family; defaults are the S2V parser's
    (S = 32, r_min = 1e-6, r_max = 1)."""

    block_width: int = 0

    def __init__(self, frequency_num: int = 32, min_radius: float = 1e-6, max_radius: float = 1.0,
                 freq_init: str = "geometric", seed: int = 0,
                 frequencies: Optional[List[float]] = None, **kwargs):
        super().__init__(frequency_num=frequency_num, min_radius=min_radius, max_radius=max_radius,
                         freq_init=freq_init, seed=seed, frequencies=frequencies, **kwargs)

    @property
    def embedding_dim(self) -> int:
        return self.block_width * self.frequency_num

    def _angles(self, lonlat) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """λ, φ (..., 1) and λ_s, φ_s (..., S), radians; (degrees·f_s)·π/180 as in the reference."""
        to_rad = math.pi / 180.0
        lon, lat = lonlat[..., 0:1], lonlat[..., 1:2]
        return lon * to_rad, lat * to_rad, lon * self._freqs * to_rad, lat * self._freqs * to_rad

    def _blocks(self, lonlat) -> List[tf.Tensor]:
        raise NotImplementedError  # abstract: the k per-scale (..., S) features, in block order

    def _encode(self, lonlat):
        feats = tf.stack(self._blocks(lonlat), axis=-1)  # (..., S, k)
        return flatten_features(feats, lonlat, self.embedding_dim)


@register_encoder("sphereC")
class SphereCEncoder(SphereEncoder):
    """Per scale: [sin φ_s, cos φ_s cos λ_s, cos φ_s sin λ_s] (S2V ``sphere``); d = 3S."""

    block_width = 3

    def _blocks(self, lonlat):
        _, _, lam_s, phi_s = self._angles(lonlat)
        return [tf.sin(phi_s), tf.cos(phi_s) * tf.cos(lam_s), tf.cos(phi_s) * tf.sin(lam_s)]


@register_encoder("sphereC+")
class SphereCPlusEncoder(SphereEncoder):
    """Per scale: [sin φ_s, cos φ_s, sin λ_s, cos λ_s, cos φ_s cos λ_s, cos φ_s sin λ_s]
    (S2V ``spheregrid``); d = 6S."""

    block_width = 6

    def _blocks(self, lonlat):
        _, _, lam_s, phi_s = self._angles(lonlat)
        return [tf.sin(phi_s), tf.cos(phi_s), tf.sin(lam_s), tf.cos(lam_s),
                tf.cos(phi_s) * tf.cos(lam_s), tf.cos(phi_s) * tf.sin(lam_s)]


@register_encoder("sphereM")
class SphereMEncoder(SphereEncoder):
    """Per scale: [sin φ_s, cos φ_s cos λ, cos φ cos λ_s, cos φ_s sin λ, cos φ sin λ_s]
    (S2V ``spheremixscale``; each product mixes a scaled and an unscaled angle); d = 5S."""

    block_width = 5

    def _blocks(self, lonlat):
        lam, phi, lam_s, phi_s = self._angles(lonlat)
        return [tf.sin(phi_s), tf.cos(phi_s) * tf.cos(lam), tf.cos(phi) * tf.cos(lam_s),
                tf.cos(phi_s) * tf.sin(lam), tf.cos(phi) * tf.sin(lam_s)]


@register_encoder("sphereM+")
class SphereMPlusEncoder(SphereEncoder):
    """Per scale: [sin φ_s, cos φ_s, sin λ_s, cos λ_s, cos φ_s cos λ, cos φ cos λ_s,
    cos φ_s sin λ, cos φ sin λ_s] (S2V ``spheregridmixscale``); d = 8S."""

    block_width = 8

    def _blocks(self, lonlat):
        lam, phi, lam_s, phi_s = self._angles(lonlat)
        return [tf.sin(phi_s), tf.cos(phi_s), tf.sin(lam_s), tf.cos(lam_s),
                tf.cos(phi_s) * tf.cos(lam), tf.cos(phi) * tf.cos(lam_s),
                tf.cos(phi_s) * tf.sin(lam), tf.cos(phi) * tf.sin(lam_s)]


@register_encoder("dfs")
class DFSEncoder(SphereEncoder):
    """Double Fourier sphere (S2V ``dft``); d = 4S² + 4S.

    Part 1: the row-major outer product A ⊗ B of A = [sin λ_0..S-1, cos λ_0..S-1] and
    B = [sin φ_0..S-1, cos φ_0..S-1] (all scale pairs, index i·2S + j); part 2: per scale
    [sin φ_s, cos φ_s, sin λ_s, cos λ_s].
    """

    block_width = 4

    @property
    def embedding_dim(self) -> int:
        return 4 * self.frequency_num ** 2 + 4 * self.frequency_num

    def _encode(self, lonlat):
        _, _, lam_s, phi_s = self._angles(lonlat)
        a = tf.concat([tf.sin(lam_s), tf.cos(lam_s)], axis=-1)  # (..., 2S)
        b = tf.concat([tf.sin(phi_s), tf.cos(phi_s)], axis=-1)
        s = self.frequency_num
        outer = flatten_features(a[..., :, None] * b[..., None, :], lonlat, 4 * s * s)
        single = tf.stack([tf.sin(phi_s), tf.cos(phi_s), tf.sin(lam_s), tf.cos(lam_s)], axis=-1)
        return tf.concat([outer, flatten_features(single, lonlat, 4 * s)], axis=-1)
