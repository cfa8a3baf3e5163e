"""The "wrap" features of Mac Aodha et al.: ``wrap`` and ``geo_net_fft`` (SPEC §1, §2.10, §2.11;
ENCODERS_EXTRA §2)."""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf

from csp_tf.encoders.base import (DEFAULT_MAP_RANGE, PositionEncoder, map_range_normalize,
                                  register_encoder)


@register_encoder("wrap")
class WrapEncoder(PositionEncoder):
    """[sin πu, sin πv, cos πu, cos πv] with u = lon/180, v = lat/90: both sines, then both cosines.

    (..., 2) lon/lat degrees -> (..., 4). [QUIRK] πv = 2·lat in radians, so latitude has a
    180° period and both poles map to the same vector. This is only the input of the ``geo_net``
    FCNet (Linear → ReLU → 4 residual blocks), which lives in ``csp_tf.models``.
    """

    def __init__(self, map_range: Sequence[float] = DEFAULT_MAP_RANGE, **kwargs):
        super().__init__(**kwargs)
        self.map_range = [float(v) for v in map_range]

    @property
    def embedding_dim(self) -> int:
        return 4

    def _encode(self, lonlat):
        x = map_range_normalize(lonlat, self.map_range)
        return tf.concat([tf.sin(math.pi * x), tf.cos(math.pi * x)], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(map_range=self.map_range)
        return config


@register_encoder("geo_net_fft")
class GeoNetFFTEncoder(WrapEncoder):
    """The same 4 wrap features, computed inside the encoder and followed by the Space2Vec FFN
    (SPEC §2.10; TorchSpatial ``wrap_ffn``)."""
