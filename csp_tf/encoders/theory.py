"""Space2Vec-theory: ``theory``, ``theorynorm`` (docs/reference.md §2.4) and the features of
``theorydiag`` (§2.5)."""

from __future__ import annotations

import math

import tensorflow as tf

from csp_tf.encoders.base import flatten_features, register_encoder
from csp_tf.encoders.scheduled import ScheduledEncoder

# a1, a2, a3: unit vectors 120° apart (docs/reference.md §2.4), as in the reference.
_UNIT_VECS = ((1.0, 0.0), (-1.0 / 2.0, math.sqrt(3.0) / 2.0), (-1.0 / 2.0, -math.sqrt(3.0) / 2.0))


@register_encoder("theory")
class TheoryEncoder(ScheduledEncoder):
    """Per scale s: [sin(q_j f_s), cos(q_j f_s)] for j = 1..3, q_j = <(lon, lat), a_j>.

    (..., 2) lon/lat degrees -> (..., 6·frequency_num), index 6s + 2(j-1) + k. Degrees go
    straight in, so the radii are in degrees.
    """

    use_radians = False

    @property
    def embedding_dim(self) -> int:
        return 6 * self.frequency_num

    def _encode(self, lonlat):
        p = lonlat * (math.pi / 180.0) if self.use_radians else lonlat
        lon, lat = p[..., 0:1], p[..., 1:2]
        q = tf.concat([lon * a0 + lat * a1 for a0, a1 in _UNIT_VECS], axis=-1)  # (..., 3)
        angles = q[..., None, :] * self._freqs[:, None]  # (..., S, 3)
        feats = tf.stack([tf.sin(angles), tf.cos(angles)], axis=-1)  # (..., S, 3, 2)
        return flatten_features(feats, lonlat, self.embedding_dim)


@register_encoder("theorynorm")
class TheoryNormEncoder(TheoryEncoder):
    """``theory`` on radians (× π/180 first); the radii are then in radians too (docs/reference.md
    §2.4)."""

    use_radians = True


@register_encoder("theorydiag")
class TheoryDiagEncoder(TheoryEncoder):
    """The feature part of ``theorydiag``: the ``theory`` 6S features (degrees), docs/reference.md
    §2.5.

    The reference reshapes them to (S, 6) and applies its own trainable block-diagonal head
    (and optional D×D post-matrix) instead of the FFN: ``location_encoder.network=diag``,
    chosen by ``auto`` (``csp_tf.models.location_encoder.DiagHead``).
    """
