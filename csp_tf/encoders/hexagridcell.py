"""Features of ``hexagridcell`` (docs/reference.md §2.6)."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from csp_tf.encoders.base import PositionEncoder, flatten_features, register_encoder


@register_encoder("hexagridcell")
class HexaGridCellEncoder(PositionEncoder):
    """Per coordinate c (outer), per scale s: [sin α, sin(α + 2π/3), sin(α + 4π/3)], α = c·f_s.

    (..., 2) lon/lat degrees -> (..., 6·frequency_num), index c·3S + 3s + k.
    [QUIRK] f_s = λ_max^{-s/(S-1)} (1 down to 1/λ_max): ``min_radius`` and ``freq_init`` are
    ignored. The reference then applies its own head (Linear 6S→D, act, dropout) instead of the
    FFN: ``location_encoder.network=linear``, chosen by ``auto`` (``csp_tf.models``).
    """

    config_keys = ("frequency_num", "max_radius")

    def __init__(self, frequency_num: int = 32, max_radius: float = 360.0, **kwargs):
        super().__init__(**kwargs)
        self.frequency_num = int(frequency_num)
        self.max_radius = float(max_radius)
        if self.frequency_num < 2:
            raise ValueError(f"frequency_num={frequency_num} must be >= 2 (S-1 divides)")
        s = np.arange(self.frequency_num, dtype=np.float64)
        self._freqs = tf.constant(1.0 / np.power(self.max_radius, s / (self.frequency_num - 1.0)))

    @property
    def embedding_dim(self) -> int:
        return 6 * self.frequency_num

    def _encode(self, lonlat):
        alpha = lonlat[..., :, None] * self._freqs  # (..., 2, S)
        feats = tf.stack([tf.sin(alpha), tf.sin(alpha + 2.0 * math.pi / 3.0),
                          tf.sin(alpha + 4.0 * math.pi / 3.0)], axis=-1)  # (..., 2, S, 3)
        return flatten_features(feats, lonlat, self.embedding_dim)
