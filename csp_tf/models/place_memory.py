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
near neighbours is what the memory is for.

The search is exact and pruned. ``set_places`` stores the places in the leaf order of a k-d tree
over their unit vectors, so each run of ``BLOCK`` consecutive places is a small spherical cap
(centre and angular radius, computed from the stored points in the graph: whatever order a
model's points are in, its caps are right). A query bounds its dot product with every cap, reads
the places of its ``CANDIDATE_BLOCKS`` best caps exactly and keeps the nearest. The answer is
proven exact when no cap left out can hold a place nearer than the last neighbour that counts;
a query where that fails (far from dense places) scans every place instead, as do batches of at
most ``SCAN_BATCH`` queries (the caps cost one pass over the places). Queries go in chunks of
``QUERY_CHUNK``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from csp_tf.coords import unit_sphere

EARTH_RADIUS_KM = 6371.0
MAX_NEIGHBOURS = 50
QUERY_CHUNK = 256
DISTANCE_FLOOR_KM = 1e-3  # a place at distance 0 gets the weight of one 1 m away
BLOCK = 32  # places per cap (consecutive in the stored order)
CANDIDATE_BLOCKS = 32  # caps read exactly per query (1024 candidate places)
SCAN_BATCH = 4  # batches up to this size scan every place (cheaper than making the caps)
# Caps are widened by ~6 m: float64 acos near 1 is good to ~1e-8 rad, so no place can fall outside.
CAP_SLACK_RAD = 1e-6
_BELOW_ANY_DOT = -3.0  # the score of a padding slot (a real dot product is >= -1)


def kd_order(points: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """An order of the points in which every run of ``block`` consecutive points (the last may
    be shorter) is a leaf of a k-d tree: the set is halved along its widest axis, at a multiple
    of ``block``, until a part holds one block. Leaves are compact, so their caps are small."""
    order = np.empty(len(points), np.int64)
    stack, out = [np.arange(len(points))], 0
    while stack:
        part = stack.pop()
        if len(part) <= block:
            order[out:out + len(part)] = part
            out += len(part)
            continue
        coords = points[part]
        axis = int(np.argmax(coords.max(axis=0) - coords.min(axis=0)))
        cut = block * ((len(part) // block + 1) // 2)  # left half: whole blocks
        split = np.argpartition(coords[:, axis], cut - 1, kind="introselect")
        stack.append(part[split[cut:]])  # popped after the left half: left stays first
        stack.append(part[split[:cut]])
    return order


def block_caps(points: tf.Tensor, block: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """Centre (nb, 3) and angular radius (nb,) of each run of ``block`` consecutive points; the
    last run is padded with copies of the last point (a copy changes no cap)."""
    n = tf.shape(points)[0]
    nb = (n + block - 1) // block
    padded = tf.concat([points, tf.repeat(points[-1:], nb * block - n, axis=0)], axis=0)
    members = tf.reshape(padded, [nb, block, 3])
    centre = tf.reduce_sum(members, axis=1)
    norm = tf.norm(centre, axis=1, keepdims=True)
    # A run spread over the sphere can sum to ~0: its first point is as good a centre as any.
    centre = tf.where(norm > 1e-9, centre / tf.maximum(norm, 1e-300), members[:, 0])
    cos = tf.clip_by_value(tf.einsum("nbd,nd->nb", members, centre), -1.0, 1.0)
    return centre, tf.reduce_max(tf.acos(cos), axis=1)


def pruned_search(q: tf.Tensor, points: tf.Tensor, centre: tf.Tensor, radius: tf.Tensor,
                  k: int, exact_first, block: int = BLOCK,
                  candidate_blocks: Optional[int] = None) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The ``k`` best dot products among the places of each query's best caps (default
    ``CANDIDATE_BLOCKS``): (values (Q, k), place indices (Q, k), proven (Q,) bool). ``proven``:
    no cap left out can beat the ``exact_first``-th value, so the first ``exact_first``
    neighbours are the exact ones."""
    candidate_blocks = candidate_blocks or CANDIDATE_BLOCKS
    n = tf.shape(points)[0]
    # cos(θ − r) = cos θ cos r + sin θ sin r for a query at angle θ from a cap of radius r
    # (widened by CAP_SLACK_RAD), 1 inside the cap: no trigonometric function per score.
    cos = tf.clip_by_value(tf.matmul(q, centre, transpose_b=True), -1.0, 1.0)
    sin = tf.sqrt(tf.maximum(1.0 - cos * cos, 0.0))
    r = tf.minimum(radius + CAP_SLACK_RAD, np.pi)[None, :]
    cos_r, sin_r = tf.cos(r), tf.sin(r)
    bound = tf.where(cos >= cos_r, tf.ones_like(cos), cos * cos_r + sin * sin_r)
    best = tf.math.top_k(bound, k=candidate_blocks + 1)
    chosen = best.indices[:, :candidate_blocks]
    idx = tf.reshape(chosen[:, :, None] * block + tf.range(block)[None, None, :], [tf.shape(q)[0], -1])
    valid = idx < n
    idx = tf.minimum(idx, n - 1)
    dots = tf.einsum("qd,qcd->qc", q, tf.gather(points, idx))
    dots = tf.where(valid, dots, _BELOW_ANY_DOT)
    top = tf.math.top_k(dots, k=k)
    last = tf.gather(top.values, tf.maximum(tf.cast(exact_first, tf.int32), 1) - 1, axis=1)
    proven = best.values[:, candidate_blocks] <= last
    return top.values, tf.gather(idx, top.indices, batch_dims=1), proven


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
        self.prune_with_caps = True  # False: scan every place (benchmarks compare the two)
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
        points = unit_sphere(lon_lat)
        order = kd_order(points)  # the caps of the pruned search (module docstring)
        self.points.assign(points[order])
        self.labels.assign(labels[order].astype(np.int32))

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

    @property
    def pruned(self) -> bool:
        """Whether the search prunes by caps (memories too small to gain from it scan all)."""
        return self.prune_with_caps and self.size > 2 * CANDIDATE_BLOCKS * BLOCK

    def neighbours(self, lon_lat, exact_first=None) -> Tuple[tf.Tensor, tf.Tensor]:
        """The ``max_neighbours`` nearest places of each row: (distance in km (B, K) float64,
        labels (B, K) int32), nearest first. The first ``exact_first`` (default all K) are exact
        (module docstring); the vote only needs its k. Queries go in chunks of ``QUERY_CHUNK``."""
        q = unit_vectors(lon_lat)
        b = tf.shape(q)[0]
        chunk = tf.maximum(tf.minimum(QUERY_CHUNK, b), 1)
        n_chunks = (b + chunk - 1) // chunk
        q = tf.pad(q, [[0, n_chunks * chunk - b], [0, 0]])
        k = self.max_neighbours
        exact_first = k if exact_first is None else exact_first

        def brute(block):
            top = tf.math.top_k(tf.matmul(block, self.points, transpose_b=True), k=k)
            return top.values, top.indices

        def scan_all():
            return tf.map_fn(brute, tf.reshape(q, [n_chunks, chunk, 3]),
                             fn_output_signature=(tf.float64, tf.int32))

        def prune():
            centre, radius = block_caps(self.points, BLOCK)

            def search(block):
                dots, idx, proven = pruned_search(block, self.points, centre, radius, k, exact_first)

                def redo_unproven():  # brute force for the queries the caps could not settle
                    where = tf.where(~proven)
                    d, i = brute(tf.gather_nd(block, where))
                    return (tf.tensor_scatter_nd_update(dots, where, d),
                            tf.tensor_scatter_nd_update(idx, where, i))

                return tf.cond(tf.reduce_all(proven), lambda: (dots, idx), redo_unproven)

            return tf.map_fn(search, tf.reshape(q, [n_chunks, chunk, 3]),
                             fn_output_signature=(tf.float64, tf.int32))

        if self.pruned:  # the caps cost one pass over the places: a few queries scan instead
            dots, idx = tf.cond(b > SCAN_BATCH, prune, scan_all)
        else:
            dots, idx = scan_all()
        dots, idx = tf.reshape(dots, [-1, k])[:b], tf.reshape(idx, [-1, k])[:b]
        # Chord length from 2 − 2·cos (exact in float64 for metre-scale gaps), then arc length.
        chord = tf.sqrt(tf.maximum(2.0 - 2.0 * dots, 0.0))
        distance = 2.0 * EARTH_RADIUS_KM * tf.asin(tf.minimum(chord / 2.0, 1.0))
        return distance, tf.gather(self.labels, idx)

    def votes(self, lon_lat) -> tf.Tensor:
        """(B, C) float64 pseudo-counts Σ_j w_j [y_j = c] with the current (k, power)."""
        distance, labels = self.neighbours(lon_lat, exact_first=tf.cast(self.params[0], tf.int32))
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
