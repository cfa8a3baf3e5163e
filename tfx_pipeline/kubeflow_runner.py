"""Compiles the csp-tf pipeline for Kubeflow Pipelines v2 (``KubeflowV2DagRunner``).

The output is a KFP v2 ``PipelineJob`` JSON (schemaVersion 2.0.0) that Vertex AI Pipelines or
KFP 2 run. Every component runs the image built from the repository's ``Dockerfile``. Beam
options go to the Beam-based components (e.g. ``--runner=DataflowRunner ...`` to run them on
Dataflow); tf.distribute, XLA and precision travel in the Trainers' ``custom_config``
(``runtime.distribution`` / ``jit_compile`` / ``mixed_precision`` of the ExperimentConfig).
No RuntimeParameters are used: TFX 1.16's KubeflowV2 compiler mishandles them
(tensorflow/tfx#7733), so every value is fixed at compile time.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from tfx_pipeline import configs
from tfx_pipeline.local_runner import SCHEMA_SUBDIR, code_version, pipeline_for


def compile_kubeflow(pipeline_root: str, data_root: str, serving_dir: str, config,
                     output_path: str = configs.KUBEFLOW_OUTPUT, *,
                     image: str = configs.DEFAULT_IMAGE,
                     beam_args: Optional[Sequence[str]] = None,
                     schema_dir: Optional[str] = None,
                     pipeline_name: str = configs.PIPELINE_NAME,
                     min_top1: float = configs.MIN_TOP1_ACCURACY,
                     top1_change_tolerance: float = configs.TOP1_CHANGE_TOLERANCE,
                     knn_tolerance: float = configs.KNN_TOLERANCE) -> str:
    """Writes the KFP v2 pipeline spec to ``output_path`` and returns the path.

    Args:
      pipeline_root / data_root / serving_dir: as the cluster sees them (``gs://...``).
      config: an ``ExperimentConfig``; data shapes and class names are read from
        ``<data_root>/metadata.json`` now, at compile time.
      output_path: the JSON file to write.
      image: the container image of every component (``docker build -t IMAGE .``).
      beam_args: Beam options (default ``configs.KUBEFLOW_BEAM_ARGS``: DirectRunner in the
        component's container, in one process).
      schema_dir: where the pinned schema is written; it must be readable by the cluster
        (default ``<pipeline_root>/_schema``).
    """
    from tfx import v1 as tfx

    pipeline = pipeline_for(
        config, data_root, schema_dir or os.path.join(pipeline_root, SCHEMA_SUBDIR),
        pipeline_name=pipeline_name, pipeline_root=pipeline_root, serving_dir=serving_dir,
        beam_pipeline_args=list(configs.KUBEFLOW_BEAM_ARGS if beam_args is None else beam_args),
        metadata_connection_config=None, min_top1=min_top1,
        top1_change_tolerance=top1_change_tolerance, knn_tolerance=knn_tolerance,
        code_version=f"{image}@{code_version()}")
    output_path = os.path.abspath(output_path)
    os.makedirs(os.path.dirname(output_path), exist_ok=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(output_path), output_filename=os.path.basename(output_path))
    runner.run(pipeline, write_out=True)
    return output_path
