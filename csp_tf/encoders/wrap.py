"""The "wrap" features of Mac Aodha et al.: ``wrap``, ``geo_net_fft`` and ``geo_net_3d``
(docs/reference.md §1, §2.10, §2.11, §13.2)."""

from __future__ import annotations

import math
import tensorflow as tf

from csp_tf.encoders.base import map_range_normalize, register_encoder
from csp_tf.encoders.naive import NaiveEncoder


@register_encoder("wrap")
class WrapEncoder(NaiveEncoder):
    """[sin πu, sin πv, cos πu, cos πv] with u = lon/180, v = lat/90: both sines, then both cosines.

    (..., 2) lon/lat degrees -> (..., 4). [QUIRK] πv = 2·lat in radians, so latitude has a
    180° period and both poles map to the same vector. This is only the input of the ``geo_net``
    FCNet (Linear → ReLU → 4 residual blocks), which lives in ``csp_tf.models``.
    """

    embedding_dim = 4  # map_range: as NaiveEncoder's

    def _encode(self, lonlat):
        x = map_range_normalize(lonlat, self.map_range)
        return tf.concat([tf.sin(math.pi * x), tf.cos(math.pi * x)], axis=-1)


@register_encoder("geo_net_fft")
class GeoNetFFTEncoder(WrapEncoder):
    """The same 4 wrap features, computed inside the encoder and followed by the Space2Vec FFN
    (docs/reference.md §2.10; TorchSpatial ``wrap_ffn``)."""


@register_encoder("geo_net_3d")
class GeoNet3DEncoder(WrapEncoder):
    """geo_net's ``encode_3D`` input: [cos πu·cos πv, sin πu·cos πv, sin πv], u = lon/180,
    v = lat/90 (docs/reference.md §13.2). (..., 2) -> (..., 3). [QUIRK] πv = 2·lat in radians, so it
    is not the true xyz: (lon, ±90) maps to the vector of (lon + 180, 0) on the equator."""

    embedding_dim = 3

    def _encode(self, lonlat):
        x = math.pi * map_range_normalize(lonlat, self.map_range)
        u, v = x[..., 0:1], x[..., 1:2]
        return tf.concat([tf.cos(u) * tf.cos(v), tf.sin(u) * tf.cos(v), tf.sin(v)], axis=-1)
