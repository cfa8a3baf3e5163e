"""Fills a model's place memory with the labeled places and chooses its vote on val.

The grid over (k, power, concentration) holds "off" (k = 0), so on val the memory never lowers
P(y|loc)'s top-1; ties go to the lower NLL, then to "off". The neighbours of the val rows come
from the model's own in-graph search (``PlaceMemory.neighbours``), so what is chosen here is
what the ``.keras`` file and the SavedModel compute.
"""

from __future__ import annotations

import itertools
import logging
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from csp_tf.coords import located_rows
from csp_tf.models.place_memory import neighbour_weights

log = logging.getLogger("csp_tf")

K_GRID = (1, 3, 5, 10, 20, 50)
POWER_GRID = (0.0, 1.0, 2.0)
CONCENTRATION_GRID = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
_FLOOR = 1e-12


def memory_size(arrays: Optional[Mapping[str, np.ndarray]]) -> int:
    """How many places ``arrays`` would put in a memory (0 for None)."""
    return 0 if arrays is None else int(len(located_rows(arrays)["label"]))


def vote_counts(distance_km: np.ndarray, neighbour_labels: np.ndarray, k: int, power: float,
                num_classes: int) -> np.ndarray:
    """(N, C) pseudo-counts Σ_j w_j [y_j = c], as ``PlaceMemory.votes`` computes them."""
    w = neighbour_weights(distance_km, k, power)
    out = np.zeros((len(distance_km), num_classes), np.float64)
    rows = np.repeat(np.arange(len(distance_km)), distance_km.shape[1])
    np.add.at(out, (rows, neighbour_labels.reshape(-1)), w.reshape(-1))
    return out


def _top1_and_nll(probs: np.ndarray, labels: np.ndarray):
    rows = np.arange(len(labels))
    true = probs[rows, labels]
    top1 = float(100.0 * np.mean(np.sum(probs >= true[:, None], axis=1) == 1))
    return top1, float(-np.mean(np.log(np.maximum(true, _FLOOR))))


def select_place_memory(network_probs: np.ndarray, distance_km: np.ndarray,
                        neighbour_labels: np.ndarray, labels: np.ndarray,
                        k_grid: Sequence[int] = K_GRID, power_grid: Sequence[float] = POWER_GRID,
                        concentration_grid: Sequence[float] = CONCENTRATION_GRID
                        ) -> Dict[str, object]:
    """The (k, power, concentration) with the best val top-1 (ties: lower NLL, then off)."""
    p = network_probs.astype(np.float64)
    labels = np.asarray(labels, np.int64)
    c_classes = p.shape[1]
    off_top1, off_nll = _top1_and_nll(p, labels)
    best = ((off_top1, -off_nll, 1), (0, 0.0, 0.0))
    for k, power in itertools.product(k_grid, power_grid):
        if k > distance_km.shape[1]:
            continue
        votes = vote_counts(distance_km, neighbour_labels, k, power, c_classes)
        total = votes.sum(axis=1, keepdims=True)
        for c in concentration_grid:
            top1, nll = _top1_and_nll((c * p + votes) / (c + total), labels)
            key = (top1, -nll, 0)
            if key > best[0]:
                best = (key, (int(k), float(power), float(c)))
    (top1, neg_nll, _), (k, power, c) = best
    return {"k": k, "power": power, "concentration": c, "val_top1": top1, "val_nll": -neg_nll,
            "val_network_top1": off_top1, "val_rows": int(len(labels))}


def calibrate_place_memory(model, memory_rows: Mapping[str, np.ndarray],
                           validation: Optional[Mapping[str, np.ndarray]]) -> Dict[str, object]:
    """Puts ``memory_rows``' located, labeled places into ``model.place_memory`` and chooses
    its vote on ``validation`` (without val rows it stays off). Returns the choice."""
    import tensorflow as tf

    from csp_tf.evaluate import predict_location_network

    memory = model.place_memory
    places = located_rows(memory_rows)
    memory.set_places(places["lon_lat"], places["label"])
    memory.set_params(0, 0.0, 0.0)
    val = None if validation is None else located_rows(validation)
    if val is None or not len(val["label"]):
        log.warning("place memory: no located, labeled val rows to choose its vote on: it stays "
                    "off (P(y|loc) is the network's)")
        return {"k": 0, "power": 0.0, "concentration": 0.0, "val_rows": 0}
    lon_lat = val["lon_lat"].astype(np.float32)
    search = tf.function(memory.neighbours, reduce_retracing=True)
    parts = [search(tf.constant(lon_lat[i:i + 4096])) for i in range(0, len(lon_lat), 4096)]
    distance = np.concatenate([d.numpy() for d, _ in parts])
    neighbour_labels = np.concatenate([n.numpy() for _, n in parts])
    network = predict_location_network(model, lon_lat)
    choice = select_place_memory(network, distance, neighbour_labels, val["label"])
    memory.set_params(choice["k"], choice["power"], choice["concentration"])
    choice["places"] = int(len(places["label"]))
    log.info("place memory: %d places; chosen on %d val rows: %s", choice["places"],
             choice["val_rows"], choice)
    return choice


def add_place_memory(model, memory_rows: Mapping[str, np.ndarray],
                     validation: Optional[Mapping[str, np.ndarray]]):
    """A copy of a trained softmax-head ``model`` with a place memory holding ``memory_rows``,
    its vote chosen on ``validation`` (for models fine-tuned without one). Every weight of
    ``model`` is copied; the fusion is left as it was (re-calibrate it: P(y|loc) changed)."""
    from csp_tf.models import CSPModel

    config = dict(model.get_config(), place_memory_size=memory_size(memory_rows))
    config.pop("name", None)
    new = CSPModel(name=model.name, **config)
    memory_ids = {id(v) for v in new.place_memory.weights}
    targets = [v for v in new.weights if id(v) not in memory_ids]
    sources = [v for v in model.weights
               if model.place_memory is None or id(v) not in {id(w) for w in model.place_memory.weights}]
    if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
        raise ValueError("add_place_memory: the copy's weights do not line up with the model's")
    for target, source in zip(targets, sources):
        target.assign(source.numpy())
    calibrate_place_memory(new, memory_rows, validation)
    return new
