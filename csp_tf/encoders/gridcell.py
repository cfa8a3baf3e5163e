"""Space2Vec-grid (``gridcell``), the encoder both CSP scripts use (docs/reference.md §2.2,
§2.3)."""

from __future__ import annotations

import tensorflow as tf

from csp_tf.encoders.base import register_encoder
from csp_tf.encoders.scheduled import ScheduledEncoder
from csp_tf.encoders.sincos import sin_cos


@register_encoder("gridcell")
class GridCellEncoder(ScheduledEncoder):
    """[sin(lon·f_s), cos(lon·f_s)]_s then the same for lat; degrees go straight in.

    (..., 2) lon/lat degrees -> (..., 4·frequency_num). Radii are in degrees; with the CSP
    settings (S=32, 0.1..360) f_0 = 10 rad/° and f_31 = 1/360 rad/°.
    """

    @property
    def embedding_dim(self) -> int:
        return 4 * self.frequency_num

    def _encode(self, lonlat):
        # (..., 2, 1) * (S,) -> (..., 2, S); interleave sin/cos -> (..., 2, S, 2) -> flat.
        # Under XLA: one argument reduction for both, no libm calls (csp_tf.encoders.sincos; the
        # float32 features equal tf.sin/tf.cos's but for one-ulp ties, ~5 in 10⁶).
        angles = lonlat[..., :, None] * self._freqs
        feats = tf.stack(sin_cos(angles), axis=-1)
        return tf.reshape(feats, tf.concat([tf.shape(lonlat)[:-1], [4 * self.frequency_num]], 0))


# gridcellnorm: the radian conversion happens after the arguments are computed and is never
# used, so it is identical to gridcell ([QUIRK], docs/reference.md §2.3).
@register_encoder("gridcellnorm")
class GridCellNormEncoder(GridCellEncoder):
    """Identical output to ``gridcell`` (reference [QUIRK]: its radian conversion is unused)."""
