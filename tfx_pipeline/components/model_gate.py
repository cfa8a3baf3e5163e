"""``ModelGate``: the blessing the Pusher obeys (``tfx_pipeline.blessing``).

Inputs: the Evaluator's evaluation and blessing, the candidate model and the ExampleGen
examples. It blesses the candidate only if the Evaluator did (value threshold; no worse than
the latest blessed model) AND its fused top-1 on the Evaluator's rows reaches a kNN's fitted on
the same training labels, minus ``knn_tolerance``. Its ModelBlessing carries what the Pusher
and the LatestBlessedModelStrategy Resolver read (``blessed``, ``current_model``,
``current_model_id``) plus ``reason`` (why not) and ``gate.json`` (the numbers), so a skipped
push says why in the run's report.
"""


import json
import os

from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import io_utils

GATE_FILE = "gate.json"
REASON_KEY = "reason"


@tfx.dsl.components.component
def ModelGate(
    examples: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Examples],
    model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.Model],
    evaluation: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelEvaluation],
    evaluator_blessing: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    blessing: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.ModelBlessing],
    feature_dim: tfx.dsl.components.Parameter[int],
    num_classes: tfx.dsl.components.Parameter[int],
    label_ratio: tfx.dsl.components.Parameter[float],
    knn_tolerance: tfx.dsl.components.Parameter[float],
    eval_split: tfx.dsl.components.Parameter[str] = "val",
) -> None:
    """Writes ``blessing``: BLESSED iff the Evaluator blessed and the kNN check passes."""
    from csp_tf.train.data_root import DataRoot
    from tfx_pipeline import blessing as rules
    from tfx_pipeline.report import tfma_metrics

    splits = artifact_utils.decode_split_names(examples.split_names)
    if "train" not in splits or eval_split not in splits:
        raise ValueError(f"ModelGate needs the 'train' and {eval_split!r} splits of "
                         f"{examples.uri}; it has {splits}")
    root = DataRoot.from_examples(
        [os.path.join(artifact_utils.get_split_uri([examples], s), "*")
         for s in ("train", eval_split)], feature_dim, num_classes)
    val = root.labeled(eval_split)
    knn = rules.knn_top1(root.labeled("train", label_ratio), val, num_classes)
    overall = tfma_metrics(evaluation.uri).get("overall", {})
    evaluator_ok = evaluator_blessing.get_int_custom_property("blessed") == 1
    decision = rules.decide(evaluator_ok, [] if evaluator_ok else
                            rules.validation_failures(evaluation.uri),
                            overall.get("top1_accuracy"), knn, knn_tolerance, len(val["label"]))

    blessing.set_string_custom_property("current_model", model.uri)
    blessing.set_int_custom_property("current_model_id", model.id)
    blessing.set_int_custom_property("blessed", int(decision.blessed))
    blessing.set_string_custom_property(REASON_KEY, "; ".join(decision.reasons))
    marker = "BLESSED" if decision.blessed else "NOT_BLESSED"
    io_utils.write_string_file(os.path.join(blessing.uri, marker), "")
    io_utils.write_string_file(os.path.join(blessing.uri, GATE_FILE),
                               json.dumps(dict(vars(decision), evaluator_blessed=evaluator_ok),
                                          indent=2))
