"""Fusion calibrated on a validation split: P(y|img, loc) = softmax(α·log P(y|img) +
β·log P(y|loc) − γ·log P(y)).

Multiplying two posteriors is only Bayes' rule when each is calibrated and the prior is
counted once; the reference multiplies a softmax image probe by per-class sigmoids, and on
natural data the fused score fell below location alone. Here α and β act as inverse
temperatures and γ removes the doubly-counted prior; all three are chosen on val by top-1
(then NLL). The grid holds (1, 0, 0) and (0, 1, 0), so on val the fused top-1 is never below the
better of its two parts. The chosen values and log P(y) live in the model's weights, so the
``.keras`` file and the SavedModel apply them.
"""

from __future__ import annotations

import itertools
import logging
from typing import Dict, Mapping, Sequence

import numpy as np

log = logging.getLogger("csp_tf")

WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
PRIOR_GRID = (0.0, 0.5, 1.0)
_FLOOR = 1e-12


def class_log_prior(labels: np.ndarray, num_classes: int, smoothing: float = 1.0) -> np.ndarray:
    """log P(y) from labeled training rows, add-``smoothing`` (Laplace) so no class is −inf."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes).astype(np.float64)
    p = (counts + smoothing) / (counts.sum() + smoothing * num_classes)
    return np.log(p)


def _top1_and_nll(score: np.ndarray, labels: np.ndarray):
    score = score - score.max(axis=1, keepdims=True)
    logp = score - np.log(np.exp(score).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    true = score[rows, labels]
    # Ties count against the true class, as csp_tf.evaluate does.
    top1 = float(100.0 * np.mean(np.sum(score >= true[:, None], axis=1) == 1))
    return top1, float(-np.mean(logp[rows, labels]))


def select_fusion(image_probs: np.ndarray, location_probs: np.ndarray, labels: np.ndarray,
                  log_prior: np.ndarray, weight_grid: Sequence[float] = WEIGHT_GRID,
                  prior_grid: Sequence[float] = PRIOR_GRID) -> Dict[str, object]:
    """The (α, β, γ) of the grid with the best val top-1 (ties: lower NLL, then closer to
    (1, 1, ·)); rows must all have a location. Returns the choice and the parts' scores."""
    li = np.log(np.maximum(image_probs.astype(np.float64), _FLOOR))
    ll = np.log(np.maximum(location_probs.astype(np.float64), _FLOOR))
    labels = np.asarray(labels, np.int64)
    best, table = None, []
    for a, b, g in itertools.product(weight_grid, weight_grid, prior_grid):
        if a == 0.0 and b == 0.0:
            continue
        top1, nll = _top1_and_nll(a * li + b * ll - g * log_prior[None, :], labels)
        table.append((a, b, g, top1, nll))
        key = (top1, -nll, -abs(a - 1.0) - abs(b - 1.0))
        if best is None or key > best[0]:
            best = (key, (a, b, g, top1, nll))
    a, b, g, top1, nll = best[1]
    image_top1, _ = _top1_and_nll(li, labels)
    location_top1, _ = _top1_and_nll(ll, labels)
    return {"alpha": a, "beta": b, "gamma": g, "val_fused_top1": top1, "val_fused_nll": nll,
            "val_image_top1": image_top1, "val_location_top1": location_top1,
            "val_rows": int(len(labels)), "grid_size": len(table)}


def calibrate_fusion(model, validation: Mapping[str, np.ndarray],
                     train_labels: np.ndarray) -> Dict[str, object]:
    """Sets ``model.log_prior`` from ``train_labels`` and ``model.fusion_weights`` from the
    labeled, located rows of ``validation``; returns what was chosen and measured."""
    from csp_tf.evaluate import predict_arrays

    log_prior = class_log_prior(train_labels, model.num_classes)
    model.log_prior.assign(log_prior.astype(np.float32))
    labels = np.asarray(validation["label"])
    lon_lat = np.asarray(validation["lon_lat"], np.float32)
    keep = (labels >= 0) & ~np.isnan(lon_lat).any(axis=1)
    if not keep.any():
        raise ValueError("fusion calibration: the validation split has no labeled rows with a "
                         "location")
    out = predict_arrays(model, lon_lat[keep], np.asarray(validation["image_features"])[keep])
    choice = select_fusion(out["image_probabilities"], out["location_probabilities"],
                           labels[keep], log_prior)
    model.fusion_weights.assign(np.asarray([choice["alpha"], choice["beta"], choice["gamma"]],
                                           np.float32))
    log.info("fusion calibrated on %d val rows: %s", choice["val_rows"], choice)
    return choice
