"""Random negative locations (the reference ``rand_samples``, docs/reference.md §6), in degrees.

All samplers are stateless (``csp_tf.random_ops``, identical with and without XLA): they take a ``seed`` tensor of shape [2] (int32/int64) so a step
is a pure function of (weights, batch, step seed). That makes runs reproducible, resumable to
the exact sample, and XLA-compilable.
"""

from __future__ import annotations

import math

import tensorflow as tf

from csp_tf.random_ops import uniform

NEG_RAND_TYPES = ("uniform", "spherical", "sphericalold", "spherical_fixed")


def sample_random_locations(num: int | tf.Tensor, neg_rand_type: str, seed: tf.Tensor) -> tf.Tensor:
    """Returns (num, 2) float32 (lon, lat) degrees.

    * ``uniform``: uniform on the lon/lat rectangle (oversamples the poles).
    * ``sphericalold`` (both CSP scripts): lon = 180·ρcosθ, lat = 90·ρsinθ with ρ = √(1−u0²):
      fills the ellipse (lon/180)² + (lat/90)² ≤ 1, crowded at its rim. [QUIRK] reproduced.
    * ``spherical`` (the parser default): [QUIRK/bug] returns the raw U[0,1) columns scaled,
      so only the north-east quadrant lon ∈ [0,180), lat ∈ [0,90) is sampled. Reproduced.
    * ``spherical_fixed``: the corrected, area-uniform sphere sample the reference computes
      and discards: lon = 180·(2u0−1), lat = 90·(1 − (2/π)·arccos(2u1−1)).
    """
    if neg_rand_type == "uniform":
        u = 2.0 * uniform(tf.stack([num, 2]), seed) - 1.0
        return u * tf.constant([180.0, 90.0])
    if neg_rand_type == "sphericalold":
        u = 2.0 * uniform(tf.stack([num, 2]), seed) - 1.0
        theta = (u[:, 1] + 1.0) / 2.0 * (2.0 * math.pi)
        rho = tf.sqrt(1.0 - tf.square(u[:, 0]))
        return tf.stack([180.0 * rho * tf.cos(theta), 90.0 * rho * tf.sin(theta)], axis=-1)
    if neg_rand_type == "spherical":
        u = uniform(tf.stack([num, 2]), seed)
        return u * tf.constant([180.0, 90.0])
    if neg_rand_type == "spherical_fixed":
        u = uniform(tf.stack([num, 2]), seed)
        lon = 180.0 * (2.0 * u[:, 0] - 1.0)
        z = tf.clip_by_value(2.0 * u[:, 1] - 1.0, -1.0, 1.0)
        lat = 90.0 * (1.0 - (2.0 / math.pi) * tf.acos(z))
        return tf.stack([lon, lat], axis=-1)
    raise ValueError(f"neg_rand_type={neg_rand_type!r} is not one of {', '.join(NEG_RAND_TYPES)}")
