"""Location jitter for fine-tuning (``finetune.location_jitter``,
``finetune.location_jitter_per_spacing``; docs/reference.md §7.5).

Each fine-tuning step moves every labeled location by Gaussian noise of standard deviation σ
degrees (the same σ on lon and lat, in degrees of each), drawn statelessly from the step seed
(``csp_tf.random_ops``: identical with and without XLA, so a run resumes to the same draws). A
label is then taught to a neighbourhood of its place rather than to the point: what lets a
network with fine trainable cells (``gridcell_hash``) fill the cells between labeled places,
the way a nearest-neighbour lookup answers from the nearest labeled place. σ may differ per
row: ``per_spacing`` c gives row i σ_i = σ + c·d_i, d_i the distance from place i to its nearest
other labeled place, so a label spreads over about its own Voronoi cell: little where labeled
places crowd, far where they are sparse.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import tensorflow as tf

from csp_tf.coords import nearest_other_distances_deg
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


# The largest per-row σ (degrees): an isolated place does not spread its label over a continent
# (the coarsest scale ``location_encoder.capacity=auto`` picks).
MAX_ROW_SIGMA_DEG = 2.0
# The column of per-row σ in a fine-tuning batch.
SIGMA_KEY = "jitter_sigma"


def jitter_locations(lon_lat: tf.Tensor, sigma_deg: Union[float, tf.Tensor],
                     seed: tf.Tensor) -> tf.Tensor:
    """(B, 2) float32 lon/lat degrees moved by N(0, σ²) per coordinate (Box–Muller on two
    stateless uniforms from ``seed``). ``sigma_deg``: a number, or a (B,) tensor of per-row σ;
    the number 0 returns ``lon_lat`` unchanged."""
    lon_lat = tf.cast(lon_lat, tf.float32)
    if isinstance(sigma_deg, (int, float)) and not sigma_deg:
        return lon_lat
    sigma = tf.cast(sigma_deg, tf.float32)
    u = uniform(tf.shape(lon_lat), seed)  # (B, 2) in [0, 1)
    radius = sigma * tf.sqrt(-2.0 * tf.math.log1p(-u[:, 0]))  # 1 - u > 0: log is finite
    theta = (2.0 * math.pi) * u[:, 1]
    lon = lon_lat[:, 0] + radius * tf.cos(theta)
    lat = lon_lat[:, 1] + radius * tf.sin(theta)
    return wrap_lon_lat(lon, lat)


def row_sigmas(lon_lat: np.ndarray, per_spacing: float) -> np.ndarray:
    """float32 (N,) σ_i = ``per_spacing``·d_i, clipped to ``MAX_ROW_SIGMA_DEG``; d_i is the
    great-circle distance (degrees) from row i to the nearest other row (0 for a duplicate
    place or a row without a location). ValueError with fewer than two rows."""
    d = nearest_other_distances_deg(lon_lat)
    return np.minimum(per_spacing * np.nan_to_num(d), MAX_ROW_SIGMA_DEG).astype(np.float32)
