"""A memory of the labeled places, held inside the model: P(y|loc) with the neighbours' votes.

A location network draws smooth class regions; a k-nearest-neighbour vote copies the label of a
labeled place a few metres away, which a network with a finite finest scale cannot. On real
places the kNN was level with or ahead of every network where labels are dense (docs/results.md).
With the memory the location head answers a Dirichlet-style posterior: the network's P(y|x) is
the prior with concentration ``c``, each of the ``k`` nearest labeled places adds a pseudo-count
``w_j = max(d_j, 1 m)^-p`` (``p = 0``: one vote each; ``p = 1``: inverse distance) to its label::

    P(y|x) = (c · P_net(y|x) + Σ_j w_j [y_j = y]) / (c + Σ_j w_j)

``(k, p, c)`` are chosen on val by ``csp_tf.memory_calibration`` (a grid that holds "off", so on
val the memory never makes P(y|loc) worse). ``k = 0`` is off. The places are held as unit vectors
in float64: in float32 two places closer than ~2 km have the same dot product, and the ranking of
near neighbours is what the memory is for. The search is exact (a matmul and top-k over every
memory row), in chunks of queries so a batch never holds more than ``QUERY_CHUNK × size`` scores.
"""

from __future__ import annotations

from typing import Tuple

import keras
import numpy as np
import tensorflow as tf

from csp_tf.coords import unit_sphere

EARTH_RADIUS_KM = 6371.0
MAX_NEIGHBOURS = 50
QUERY_CHUNK = 256
DISTANCE_FLOOR_KM = 1e-3  # a place at distance 0 gets the weight of one 1 m away


def unit_vectors(lon_lat) -> tf.Tensor:
    """(B, 2) degrees → (B, 3) float64 points on the unit sphere."""
    ll = tf.cast(lon_lat, tf.float64) * (np.pi / 180.0)
    lon, lat = ll[:, 0], ll[:, 1]
    return tf.stack([tf.cos(lat) * tf.cos(lon), tf.cos(lat) * tf.sin(lon), tf.sin(lat)], axis=1)


def neighbour_weights(distance_km, k, power):
    """w_j = max(d_j, 1 m)^-power for the first ``k`` neighbours, 0 after (numpy or TF)."""
    lib = tf if isinstance(distance_km, tf.Tensor) else np
    d = lib.maximum(distance_km, DISTANCE_FLOOR_KM)
    rank = lib.arange(distance_km.shape[-1]) if lib is np else tf.range(tf.shape(distance_km)[-1])
    if lib is tf:
        rank, k, power = (tf.cast(rank, tf.float64), tf.cast(k, tf.float64),
                          tf.cast(power, tf.float64))
    return lib.where(rank[None, :] < k, d ** -power, 0.0)


@keras.saving.register_keras_serializable(package="csp_tf")
class PlaceMemory(keras.layers.Layer):
    """``size`` labeled places (unit vectors, labels) and the vote's (k, power, concentration).

    Every weight is set from data (``set_places``, ``set_params``), never by gradients; all of
    them are saved with the model, so the ``.keras`` file and the SavedModel answer the same.
    """

    def __init__(self, size: int, num_classes: int, max_neighbours: int = MAX_NEIGHBOURS,
                 **kwargs):
        super().__init__(**kwargs)
        if size < 1:
            raise ValueError(f"a place memory needs at least one place, not size={size}")
        self.size, self.num_classes = int(size), int(num_classes)
        self.max_neighbours = int(min(max_neighbours, self.size))
        self.points = self.add_weight(shape=(self.size, 3), dtype="float64", trainable=False,
                                      initializer="zeros", name="points")
        self.labels = self.add_weight(shape=(self.size,), dtype="int32", trainable=False,
                                      initializer="zeros", name="labels")
        # (k, power, concentration); k = 0: the memory is off and P(y|loc) is the network's.
        self.params = self.add_weight(shape=(3,), dtype="float32", trainable=False,
                                      initializer="zeros", name="params")
        self.built = True

    def set_places(self, lon_lat: np.ndarray, labels: np.ndarray) -> None:
        lon_lat, labels = np.asarray(lon_lat, np.float64), np.asarray(labels, np.int64)
        if lon_lat.shape != (self.size, 2) or labels.shape != (self.size,):
            raise ValueError(f"the place memory holds {self.size} places; got lon_lat "
                             f"{lon_lat.shape} and labels {labels.shape}")
        if np.isnan(lon_lat).any():
            raise ValueError("the place memory takes located rows only (a NaN lon/lat was given)")
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f"place memory labels must be in [0, {self.num_classes}); got "
                             f"[{labels.min()}, {labels.max()}]")
        self.points.assign(unit_sphere(lon_lat))
        self.labels.assign(labels.astype(np.int32))

    def set_params(self, k: int, power: float, concentration: float) -> None:
        if not 0 <= k <= self.max_neighbours:
            raise ValueError(f"k={k} is outside [0, {self.max_neighbours}]")
        if k and (power < 0 or concentration <= 0):
            raise ValueError(f"power must be >= 0 and concentration > 0 (got {power}, "
                             f"{concentration})")
        self.params.assign(np.asarray([k, power, concentration], np.float32))

    @property
    def active(self) -> bool:
        return bool(self.params.numpy()[0] > 0)

    def neighbours(self, lon_lat) -> Tuple[tf.Tensor, tf.Tensor]:
        """The ``max_neighbours`` nearest places of each row: (distance in km (B, K) float64,
        labels (B, K) int32), nearest first. Exact; queries go in chunks of ``QUERY_CHUNK``."""
        q = unit_vectors(lon_lat)
        b = tf.shape(q)[0]
        chunk = tf.maximum(tf.minimum(QUERY_CHUNK, b), 1)
        n_chunks = (b + chunk - 1) // chunk
        q = tf.pad(q, [[0, n_chunks * chunk - b], [0, 0]])
        k = self.max_neighbours

        def search(block):
            top = tf.math.top_k(tf.matmul(block, self.points, transpose_b=True), k=k)
            return top.values, top.indices

        dots, idx = tf.map_fn(search, tf.reshape(q, [n_chunks, chunk, 3]),
                              fn_output_signature=(tf.float64, tf.int32))
        dots, idx = tf.reshape(dots, [-1, k])[:b], tf.reshape(idx, [-1, k])[:b]
        # Chord length from 2 − 2·cos (exact in float64 for metre-scale gaps), then arc length.
        chord = tf.sqrt(tf.maximum(2.0 - 2.0 * dots, 0.0))
        distance = 2.0 * EARTH_RADIUS_KM * tf.asin(tf.minimum(chord / 2.0, 1.0))
        return distance, tf.gather(self.labels, idx)

    def votes(self, lon_lat) -> tf.Tensor:
        """(B, C) float64 pseudo-counts Σ_j w_j [y_j = c] with the current (k, power)."""
        distance, labels = self.neighbours(lon_lat)
        w = neighbour_weights(distance, self.params[0], self.params[1])
        return tf.einsum("bk,bkc->bc", w, tf.one_hot(labels, self.num_classes, dtype=tf.float64))

    def mix(self, network_probs, lon_lat) -> tf.Tensor:
        """(c·P_net + votes) / (c + Σ votes); ``network_probs`` unchanged while ``k = 0``."""
        def with_votes():
            votes = self.votes(lon_lat)
            c = tf.cast(self.params[2], tf.float64)
            p = tf.cast(network_probs, tf.float64)
            mixed = (c * p + votes) / (c + tf.reduce_sum(votes, axis=1, keepdims=True))
            return tf.cast(mixed, network_probs.dtype)

        return tf.cond(self.params[0] > 0, with_votes, lambda: tf.identity(network_probs))

    def get_config(self):
        return dict(super().get_config(), size=self.size, num_classes=self.num_classes,
                    max_neighbours=self.max_neighbours)
