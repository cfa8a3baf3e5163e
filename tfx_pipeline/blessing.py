"""The push decision: the Evaluator's verdict AND "no worse than a kNN on the same rows".

TFMA's Evaluator blesses a candidate whose fused top-1 on ``val`` passes the value threshold
(``min_top1``) and, when a blessed model exists, is at most ``top1_change_tolerance`` below that
model's top-1 on the same rows. It cannot compare with a model it does not run, so ``decide``
adds the kNN baseline: ``knn_sphere`` (``csp_tf.experiments.baselines``: k and weights chosen on
val) fitted on the label-ratio subset of ``train`` the candidate was fine-tuned on and scored on
the Evaluator's rows (labeled ``val``; a row without a location gets the most frequent training
label). The candidate must reach the kNN's top-1 minus ``knn_tolerance``. Every reason a model
is not pushed is written down (``Decision.reasons``), for the run's report and the artifact.
No TFX here (``components.model_gate`` wires it in).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np

from csp_tf.experiments.baselines import fit_knn_sphere


@dataclasses.dataclass
class Decision:
    blessed: bool
    reasons: List[str]  # empty when blessed
    candidate_top1: Optional[float]  # fractions in [0, 1]
    knn_top1: Optional[float]
    knn_chosen: Dict[str, Any]
    knn_tolerance: float
    rows: int

    def summary(self) -> str:
        return "blessed" if self.blessed else "not blessed: " + "; ".join(self.reasons)


def knn_top1(train: Dict[str, np.ndarray], val: Dict[str, np.ndarray],
             num_classes: int) -> Dict[str, Any]:
    """Top-1 (fraction) of ``knn_sphere`` fitted on ``train`` on every row of ``val``, and
    what was chosen on ``val`` (k, weights)."""
    train_ok = np.all(np.isfinite(train["lon_lat"]), axis=1)
    train = {k: v[train_ok] for k, v in train.items()}
    located = np.all(np.isfinite(val["lon_lat"]), axis=1)
    model, chosen = fit_knn_sphere(train, {k: v[located] for k, v in val.items()}, num_classes)
    correct = round(chosen["val_top1"] / 100.0 * int(located.sum()))
    majority = int(np.bincount(train["label"], minlength=num_classes).argmax())
    correct += int(np.sum(val["label"][~located] == majority))
    return {"top1": correct / len(val["label"]), "k": chosen["k"], "weights": chosen["weights"]}


def validation_failures(evaluation_uri: str) -> List[str]:
    """The Evaluator's failed thresholds, one line each (empty when validation passed)."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    out = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            value = failure.metric_value.double_value.value
            threshold, diff = failure.metric_threshold, failure.metric_key.is_diff
            if diff:  # the change threshold: candidate minus the latest blessed model
                bound = f"at least {threshold.change_threshold.absolute.value:+.4f}"
                out.append(f"Evaluator: {failure.metric_key.name} change vs the blessed model "
                           f"= {value:+.4f} fails its threshold ({bound})")
            else:
                bound = f"lower bound {threshold.value_threshold.lower_bound.value:.4f}"
                out.append(f"Evaluator: {failure.metric_key.name} = {value:.4f} fails its "
                           f"threshold ({bound})")
    if not out and not result.validation_ok:
        out.append(f"Evaluator: validation failed ({result.missing_thresholds or 'no detail'})")
    return out


def decide(evaluator_blessed: bool, evaluator_failures: List[str],
           candidate_top1: Optional[float], knn: Dict[str, Any], knn_tolerance: float,
           rows: int) -> Decision:
    """Blessed iff the Evaluator blessed and ``candidate_top1 >= knn top1 - knn_tolerance``."""
    reasons = [] if evaluator_blessed else list(evaluator_failures or ["Evaluator: not blessed"])
    if candidate_top1 is None:
        reasons.append("the Evaluator's overall top1_accuracy is missing")
    elif candidate_top1 < knn["top1"] - knn_tolerance:
        reasons.append(
            f"fused top-1 {100 * candidate_top1:.2f} % is below the required "
            f"{100 * (knn['top1'] - knn_tolerance):.2f} %: the kNN baseline's "
            f"{100 * knn['top1']:.2f} % (knn_sphere k={knn['k']}, {knn['weights']}) on the same "
            f"{rows} val rows, minus the tolerance {100 * knn_tolerance:.2f} points")
    return Decision(not reasons, reasons, candidate_top1, knn["top1"],
                    {"k": knn["k"], "weights": knn["weights"]}, knn_tolerance, rows)
