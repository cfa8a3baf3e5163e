"""The Evaluator's TFMA config: fused top-1 / top-3 on the ``serving_default`` signature,
overall and per ``region``, with a value threshold and a change threshold on top-1."""

from __future__ import annotations

import json
from typing import Sequence

from tfx_pipeline import configs

TOP1, TOP3 = "top1_accuracy", "top3_accuracy"


def make_eval_config(min_top1: float = configs.MIN_TOP1_ACCURACY,
                     top1_change_tolerance: float = configs.TOP1_CHANGE_TOLERANCE,
                     slice_features: Sequence[str] = configs.SLICE_FEATURES):
    """A ``tfma.EvalConfig`` for the candidate (and, when the Resolver finds one, the latest
    blessed model as baseline; TFX adds the baseline spec and skips change thresholds when
    there is none).

    Args:
      min_top1: value threshold, lower bound on fused top-1 accuracy as a fraction in [0, 1]
        (a bound above 1 can never be met: nothing is blessed).
      top1_change_tolerance: change threshold, how far (absolute fraction) the candidate's
        top-1 may fall below the baseline's and still be blessed.
      slice_features: features to slice by, besides the overall slice.
    """
    import tensorflow_model_analysis as tfma

    top1_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": float(min_top1)}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -float(top1_change_tolerance)}))
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            # The exported model is a tf.Module (not Keras): call the signature directly.
            signature_name="serving_default", model_type=tfma.TF_GENERIC,
            label_key=configs.LABEL_KEY, prediction_key=configs.PREDICTION_KEY)],
        slicing_specs=[tfma.SlicingSpec()] + [tfma.SlicingSpec(feature_keys=[f])
                                             for f in slice_features],
        metrics_specs=[tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            # Thresholds gate on the overall slice only: a small region must not veto a model.
            tfma.MetricConfig(class_name="SparseTopKCategoricalAccuracy",
                              config=json.dumps({"k": 1, "name": TOP1}),
                              per_slice_thresholds=[tfma.PerSliceMetricThreshold(
                                  slicing_specs=[tfma.SlicingSpec()], threshold=top1_threshold)]),
            tfma.MetricConfig(class_name="SparseTopKCategoricalAccuracy",
                              config=json.dumps({"k": 3, "name": TOP3})),
        ])])
