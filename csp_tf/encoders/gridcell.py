"""Space2Vec-grid (``gridcell``), the encoder both CSP scripts use (SPEC §2.2, §2.3)."""

from __future__ import annotations

from typing import List, Optional

import numpy as np
import tensorflow as tf

from csp_tf.encoders.base import PositionEncoder, geometric_frequencies, register_encoder


@register_encoder("gridcell")
class GridCellEncoder(PositionEncoder):
    """[sin(lon·f_s), cos(lon·f_s)]_s then the same for lat; degrees go straight in.

    (..., 2) lon/lat degrees -> (..., 4·frequency_num). Radii are in degrees; with the CSP
    settings (S=32, 0.1..360) f_0 = 10 rad/° and f_31 = 1/360 rad/°.
    """

    def __init__(self, frequency_num: int = 32, min_radius: float = 0.1, max_radius: float = 360.0,
                 freq_init: str = "geometric", seed: int = 0,
                 frequencies: Optional[List[float]] = None, **kwargs):
        super().__init__(**kwargs)
        self.frequency_num = int(frequency_num)
        self.min_radius = float(min_radius)
        self.max_radius = float(max_radius)
        self.freq_init = freq_init
        self.seed = int(seed)
        # Saved in the config so a `random` schedule reloads as the same function.
        if frequencies is None:
            frequencies = geometric_frequencies(self.frequency_num, self.min_radius,
                                                self.max_radius, freq_init, seed).tolist()
        self.frequencies = [float(f) for f in frequencies]
        self._freqs = tf.constant(np.asarray(self.frequencies, np.float64))

    @property
    def embedding_dim(self) -> int:
        return 4 * self.frequency_num

    def _encode(self, lonlat):
        # (..., 2, 1) * (S,) -> (..., 2, S); interleave sin/cos -> (..., 2, S, 2) -> flat.
        angles = lonlat[..., :, None] * self._freqs
        feats = tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1)
        return tf.reshape(feats, tf.concat([tf.shape(lonlat)[:-1], [self.embedding_dim]], 0))

    def get_config(self):
        config = super().get_config()
        config.update(frequency_num=self.frequency_num, min_radius=self.min_radius,
                      max_radius=self.max_radius, freq_init=self.freq_init, seed=self.seed,
                      frequencies=self.frequencies)
        return config

    @classmethod
    def from_experiment_config(cls, cfg) -> "GridCellEncoder":
        return cls(frequency_num=cfg.frequency_num, min_radius=cfg.min_radius,
                   max_radius=cfg.max_radius, freq_init=cfg.freq_init, seed=cfg.seed)


# gridcellnorm: the radian conversion happens after the arguments are computed and is never
# used, so it is identical to gridcell ([QUIRK], SPEC §2.3).
@register_encoder("gridcellnorm")
class GridCellNormEncoder(GridCellEncoder):
    """Identical output to ``gridcell`` (reference [QUIRK]: its radian conversion is unused)."""
