"""Deployment constants of the csp-tf TFX pipeline (one place; runners read them, no logic).

Library defaults (model sizes, epochs, XLA, precision) live in ``csp_tf.configs``; what is here
is where things run and how the pipeline gates a model.
"""

from __future__ import annotations

import os

PIPELINE_NAME = "csp-tf"

# Trainer entry points, named by dotted string (the TFX template convention): the package is
# installed in the venv and in the container image, so nothing is copied into the pipeline root.
PRETRAIN_RUN_FN = "tfx_pipeline.trainer_pretrain.run_fn"
FINETUNE_RUN_FN = "tfx_pipeline.trainer_finetune.run_fn"

# The curated schema (ImportSchemaGen); validation.render_schema pins F and C before a run.
SCHEMA_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema", "schema.pbtxt")

# ExampleGen splits = the data root's split directories (docs/architecture.md).
SPLITS = ("pretrain", "train", "val", "test")
PRETRAIN_SPLITS = ("pretrain", "train")  # the paper pre-trains on every location-image pair
FINETUNE_SPLITS = ("train",)  # the label-ratio subset is chosen inside the Trainer
EVAL_SPLIT = "val"

# Evaluator: TFMA on the exported serving_default signature.
LABEL_KEY = "label"
PREDICTION_KEY = "probabilities"  # the fused P(y|img)·P(y|loc) output
SLICE_FEATURES = ("region",)
MIN_TOP1_ACCURACY = 0.25  # value threshold: lower bound on fused top-1 (a fraction, not %)
TOP1_CHANGE_TOLERANCE = 0.01  # change threshold: candidate may be at most this much below the
#                               latest blessed model's top-1 (absolute, fraction)
KNN_TOLERANCE = 0.0  # ModelGate: candidate's fused top-1 may be at most this much below a kNN's
#                      on the same val rows, fitted on the same training labels (fraction)

# Beam: LocalDagRunner default runs the DirectRunner with one worker process per core.
LOCAL_BEAM_ARGS = ("--direct_running_mode=multi_processing", "--direct_num_workers=0")
# Kubeflow: Beam runs inside each component's container unless a distributed runner is given,
# e.g. --runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp (docs/pipeline.md).
# One process: the container runs TFX's entry point, which does not install csp-tf's fix for the
# multi-worker DirectRunner's data-plane race (csp_tf/data/beam_data_plane.py).
KUBEFLOW_BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")

# Kubeflow container image, built from the repository's Dockerfile.
DEFAULT_IMAGE = "csp-tf:latest"
KUBEFLOW_OUTPUT = "csp_tf_pipeline.json"

# Local layout under a working directory (csp-tf pipeline run --workdir).
LOCAL_METADATA_FILE = "metadata.sqlite"
