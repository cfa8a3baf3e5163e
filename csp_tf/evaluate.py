"""Evaluation (docs/reference.md §9): image-only, location-only and fused P(y|img)·P(y|loc) scores;
top-k accuracy in % and MRR, in eval mode (no dropout), on the final model."""

from __future__ import annotations

from typing import Dict, Iterable, Mapping

import numpy as np
import tensorflow as tf

from csp_tf.models import CSPModel

TOP_KS = (1, 3, 5, 10)


def ranks_of_true_class(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1-based rank of each row's true class; ties count against the true class (pessimistic),
    where the reference's argsort breaks them arbitrarily."""
    true = scores[np.arange(len(labels)), labels]
    # Ties (e.g. all-zero scores) count against the true class: no credit for a coin flip.
    return np.sum(scores >= true[:, None], axis=1)


def ranking_metrics(scores: np.ndarray, labels: np.ndarray, ks: Iterable[int] = TOP_KS) -> Dict[str, float]:
    """top-k accuracy in % for each k, and MRR (mean 1/rank)."""
    if len(labels) == 0:
        raise ValueError("no labeled rows to evaluate")
    ranks = ranks_of_true_class(np.asarray(scores, np.float64), np.asarray(labels, np.int64))
    out = {f"top{k}": float(100.0 * np.mean(ranks <= k)) for k in ks}
    out["mrr"] = float(np.mean(1.0 / ranks))
    out["count"] = float(len(labels))
    return out


def predict_arrays(model: CSPModel, lon_lat: np.ndarray, image_features: np.ndarray,
                   batch_size: int = 4096) -> Dict[str, np.ndarray]:
    """Runs ``model.predict_all`` in batches; returns fused / image / location scores."""
    fn = getattr(model, "_csp_predict_fn", None)
    if fn is None:  # one traced function per model, not one per call
        fn = tf.function(lambda x, f: model.predict_all(x, f), reduce_retracing=True)
        model._csp_predict_fn = fn
    parts: Dict[str, list] = {}
    for i in range(0, len(lon_lat), batch_size):
        out = fn(tf.constant(lon_lat[i:i + batch_size], tf.float32),
                 tf.constant(image_features[i:i + batch_size], tf.float32))
        for k, v in out.items():
            parts.setdefault(k, []).append(v.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def predict_location_network(model: CSPModel, lon_lat: np.ndarray,
                             batch_size: int = 4096) -> np.ndarray:
    """P(y|loc) of the network alone (a model's place memory left out), in batches."""
    fn = getattr(model, "_csp_network_fn", None)
    if fn is None:
        fn = tf.function(lambda x: model.location_probs(x, memory=False), reduce_retracing=True)
        model._csp_network_fn = fn
    return np.concatenate([fn(tf.constant(lon_lat[i:i + batch_size], tf.float32)).numpy()
                           for i in range(0, len(lon_lat), batch_size)])


def has_active_memory(model) -> bool:
    memory = getattr(model, "place_memory", None)
    return memory is not None and memory.active


def evaluate_model(model: CSPModel, arrays: Mapping[str, np.ndarray],
                   ks: Iterable[int] = TOP_KS) -> Dict[str, Dict[str, float]]:
    """Metrics of the three predictors on labeled rows (``lon_lat``, ``image_features``, ``label``).

    * ``fused``: P_img ⊙ σ(W_c e(x)); rows without a location use P_img (docs/reference.md §9).
    * ``image``: P_img ("No prior" / Img-only).
    * ``location``: σ(W_c e(x)) on the rows that have a location ("LocEnc"), with the place
      memory's votes when the model has an active one; then ``location_network`` also scores
      the network alone.
    """
    labels = np.asarray(arrays["label"])
    keep = labels >= 0
    lon_lat = np.asarray(arrays["lon_lat"], np.float32)[keep]
    labels = labels[keep]
    scores = predict_arrays(model, lon_lat, np.asarray(arrays["image_features"], np.float32)[keep])
    has_loc = ~np.isnan(lon_lat).any(axis=1)
    out = {
        "fused": ranking_metrics(scores["probabilities"], labels, ks),
        "image": ranking_metrics(scores["image_probabilities"], labels, ks),
        "location": ranking_metrics(scores["location_probabilities"][has_loc], labels[has_loc], ks),
    }
    if has_active_memory(model):
        network = predict_location_network(model, lon_lat[has_loc])
        out["location_network"] = ranking_metrics(network, labels[has_loc], ks)
    return out
