"""Location jitter for fine-tuning (``finetune.location_jitter``, docs/reference.md §7.5).

Each fine-tuning step moves every labeled location by Gaussian noise of standard deviation σ
degrees (the same σ on lon and lat, in degrees of each), drawn statelessly from the step seed
(``csp_tf.random_ops``: identical with and without XLA, so a run resumes to the same draws). A
label is then taught to a neighbourhood of its place rather than to the point: what lets a
network with fine trainable cells (``gridcell_hash``) fill the cells between labeled places,
the way a nearest-neighbour lookup answers from the nearest labeled place.
"""

from __future__ import annotations

import math

import tensorflow as tf

from csp_tf.random_ops import uniform


def wrap_lon_lat(lon: tf.Tensor, lat: tf.Tensor) -> tf.Tensor:
    """(..., 2) lon/lat on the sphere from any lon and lat in [-270, 270]: a latitude past a pole
    is reflected (lat → ±180 − lat, over to the other side: lon + 180) and lon wrapped to
    [-180, 180)."""
    over = tf.abs(lat) > 90.0
    lat = tf.where(over, tf.sign(lat) * 180.0 - lat, lat)
    lon = tf.where(over, lon + 180.0, lon)
    lon = tf.math.floormod(lon + 180.0, 360.0) - 180.0
    return tf.stack([lon, lat], axis=-1)


def jitter_locations(lon_lat: tf.Tensor, sigma_deg: float, seed: tf.Tensor) -> tf.Tensor:
    """(B, 2) float32 lon/lat degrees moved by N(0, σ²) per coordinate (Box–Muller on two
    stateless uniforms from ``seed``); σ = 0 returns ``lon_lat`` unchanged."""
    lon_lat = tf.cast(lon_lat, tf.float32)
    if not sigma_deg:
        return lon_lat
    u = uniform(tf.shape(lon_lat), seed)  # (B, 2) in [0, 1)
    radius = tf.sqrt(-2.0 * tf.math.log1p(-u[:, 0]))  # 1 - u > 0: log is finite
    theta = (2.0 * math.pi) * u[:, 1]
    lon = lon_lat[:, 0] + float(sigma_deg) * radius * tf.cos(theta)
    lat = lon_lat[:, 1] + float(sigma_deg) * radius * tf.sin(theta)
    return wrap_lon_lat(lon, lat)
