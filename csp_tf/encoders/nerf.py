"""``nerf``: NeRF positional encoding of the unit-sphere xyz (docs/reference.md §13.3)."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from csp_tf.encoders.base import PositionEncoder, flatten_features, register_encoder


@register_encoder("nerf")
class NeRFEncoder(PositionEncoder):
    """[sin(x f_s), sin(y f_s), sin(z f_s), cos(x f_s), cos(y f_s), cos(z f_s)], f_s = π·2^s.

    (..., 2) lon/lat degrees -> (..., 6·frequency_num), coordinate-major: index c·S + s with c
    in (sin x, sin y, sin z, cos x, cos y, cos z); x = cos φ cos λ, y = cos φ sin λ, z = sin φ.
    The raw xyz is not included and the radii are unused. Default S = 16, the value TorchSpatial
    always uses ([QUIRK] there); Sphere2Vec passes ``frequency_num`` through, as csp-tf does.
    """

    config_keys = ("frequency_num",)

    def __init__(self, frequency_num: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.frequency_num = int(frequency_num)
        self._freqs = tf.constant(math.pi * 2.0 ** np.arange(self.frequency_num, dtype=np.float64))

    @property
    def embedding_dim(self) -> int:
        return 6 * self.frequency_num

    def _encode(self, lonlat):
        rad = lonlat * (math.pi / 180.0)
        lam, phi = rad[..., 0:1], rad[..., 1:2]
        xyz = tf.concat([tf.cos(phi) * tf.cos(lam), tf.cos(phi) * tf.sin(lam), tf.sin(phi)], -1)
        angles = xyz[..., :, None] * self._freqs  # (..., 3, S)
        feats = tf.concat([tf.sin(angles), tf.cos(angles)], axis=-2)  # (..., 6, S)
        return flatten_features(feats, lonlat, self.embedding_dim)
