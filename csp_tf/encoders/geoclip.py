"""``geoclip``: GeoCLIP's position encoding (Vivanco Cepeda et al., NeurIPS 2023).

The point goes through the Equal Earth projection (Šavrič et al. 2018, as GeoCLIP writes it,
scaled by SF/180 so the map spans about [-1, 1] × [-0.5, 0.5]), then through one bank of
Gaussian random Fourier features per scale σ: γ_σ(v) = [cos 2π B_σ v, sin 2π B_σ v] with
B_σ ∈ R^{F×2}, B_σ ~ N(0, σ²). The banks are concatenated, σ by σ, so the ``capsules`` network
(csp_tf.models.capsules) gives each scale its own MLP and sums them.

The B matrices are non-trainable weights (drawn from ``seed`` here; GeoCLIP's own come from its
checkpoint: csp_tf.pretrained_geoclip). The projection and the phases are computed in float64
like every position encoder here; GeoCLIP's √3 is a float32 tensor even when it runs in float64,
and that constant is kept, so the features equal the reference's own float64 evaluation.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from csp_tf.encoders.base import PositionEncoder, register_encoder

# Equal Earth polynomial coefficients and GeoCLIP's scale factor.
A1, A2, A3, A4, SCALE = 1.340264, -0.081106, 0.000893, 0.003796, 66.50336
SQRT3 = float(np.float32(math.sqrt(3.0)))  # torch.sqrt(torch.tensor(3.0)) in the reference
GEOCLIP_SIGMAS = (1.0, 16.0, 256.0)  # 2^0, 2^4, 2^8


def equal_earth(lonlat: tf.Tensor) -> tf.Tensor:
    """(..., 2) lon/lat degrees -> (..., 2) GeoCLIP's scaled Equal Earth (x, y)."""
    lon = lonlat[..., 0] * (math.pi / 180.0)
    lat = lonlat[..., 1] * (math.pi / 180.0)
    theta = tf.asin(SQRT3 / 2.0 * tf.sin(lat))
    t2 = theta * theta
    t6 = t2 * t2 * t2
    denominator = 3.0 * (9.0 * A4 * t6 * t2 + 7.0 * A3 * t6 + 3.0 * A2 * t2 + A1)
    x = 2.0 * SQRT3 * lon * tf.cos(theta) / denominator
    y = theta * (A4 * t6 * t2 + A3 * t6 + A2 * t2 + A1)
    return tf.stack([x, y], axis=-1) * (SCALE / 180.0)


@register_encoder("geoclip")
class GeoCLIPEncoder(PositionEncoder):
    """(..., 2) lon/lat degrees -> (..., len(sigmas) · 2 · encoded_size).

    Per scale, ``encoded_size`` cosines then as many sines (GeoCLIP's ``GaussianEncoding``).
    """

    config_keys = ("sigmas", "encoded_size", "seed")

    def __init__(self, sigmas: Sequence[float] = GEOCLIP_SIGMAS, encoded_size: int = 256,
                 seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.sigmas = [float(s) for s in sigmas]
        self.encoded_size, self.seed = int(encoded_size), int(seed)
        if not self.sigmas or min(self.sigmas) <= 0 or self.encoded_size < 1:
            raise ValueError(f"geoclip: sigmas {self.sigmas} must be positive and encoded_size "
                             f"{self.encoded_size} ≥ 1")
        rng = np.random.default_rng(self.seed)
        init = np.stack([rng.normal(0.0, s, (self.encoded_size, 2)) for s in self.sigmas])
        # (S, F, 2): B_σ as GeoCLIP stores it (out × in), loaded by name from its checkpoint.
        self.b = self.add_weight(name="b", shape=init.shape, trainable=False,
                                 initializer=tf.constant_initializer(init.astype(np.float32)))

    @property
    def embedding_dim(self) -> int:
        return len(self.sigmas) * 2 * self.encoded_size

    def _encode(self, lonlat):
        v = equal_earth(lonlat)
        b = tf.cast(self.b, tf.float64)
        # 2π·v first, as the reference computes it; x·b_0 + y·b_1 keeps any leading shape.
        v = 2.0 * math.pi * v
        phase = v[..., None, None, 0] * b[..., 0] + v[..., None, None, 1] * b[..., 1]  # (..., S, F)
        feats = tf.concat([tf.cos(phase), tf.sin(phase)], axis=-1)  # (..., S, 2F)
        lead = tf.shape(lonlat)[:-1]
        return tf.reshape(feats, tf.concat([lead, [self.embedding_dim]], 0))
