"""``create_pipeline``: the csp-tf TFX pipeline as a pure factory (no environment reads).

    ImportExampleGen ─ StatisticsGen ─┬─ ExampleValidator ─ AnomaliesGate ┐ (gate runs before training)
      (data root)      ImportSchemaGen ┘                                  │
         │                                                                ▼
         ├──────────────────────────────────────────── pretrain Trainer ─(base_model)─ finetune Trainer
         │                                                                               │
         └── Evaluator (val, TFMA, serving_default) ◄── latest pushed model (Resolver) ──┤
                    └─ blessing ─ ModelGate (+ no worse than a kNN on the same rows) ─ Pusher ─┘ → serving_dir/<version>/
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

from tfx_pipeline import configs
from tfx_pipeline.trainer_util import make_custom_config

MODEL_GATE_ID = "ModelGate"


def create_pipeline(*, pipeline_name: str, pipeline_root: str, data_root: str, serving_dir: str,
                    schema_path: str, experiment: Dict[str, Any], class_names: Sequence[str],
                    beam_pipeline_args: Sequence[str] = (),
                    metadata_connection_config: Optional[Any] = None,
                    enable_cache: bool = True,
                    min_top1: float = configs.MIN_TOP1_ACCURACY,
                    top1_change_tolerance: float = configs.TOP1_CHANGE_TOLERANCE,
                    knn_tolerance: float = configs.KNN_TOLERANCE,
                    code_version: str = "", splits: Sequence[str] = configs.SPLITS,
                    feature_stats: Optional[Any] = None):
    """Returns the ``tfx.dsl.Pipeline``.

    Args:
      pipeline_name / pipeline_root: TFX pipeline identity and artifact root.
      data_root: an ingested data root (docs/architecture.md); its split directories become
        the ExampleGen splits.
      serving_dir: Pusher's filesystem destination; versions land in ``<serving_dir>/<version>/``.
      schema_path: the curated schema (``validation.render_schema``) for ImportSchemaGen.
      experiment: ``ExperimentConfig.to_dict()`` with data shapes filled in; both Trainers get
        it through ``custom_config`` (runtime.jit_compile / mixed_precision / distribution too).
      class_names: label names in index order (written next to the served model).
      beam_pipeline_args: Beam options of the Beam-based components.
      metadata_connection_config: MLMD connection (None: the orchestrator provides one).
      enable_cache: reuse outputs of components whose inputs and properties did not change.
      min_top1 / top1_change_tolerance: the Evaluator's thresholds (``evaluation``).
      knn_tolerance: ModelGate's: how far (fraction) the candidate's fused top-1 may fall below
        a kNN's on the same val rows (``blessing``).
      code_version: a fingerprint of the training code, part of the Trainers' cache key.
      splits: data-root split directories to import.
    """
    from tfx import v1 as tfx

    from tfx_pipeline.components import AnomaliesGate, AtomicPusher, CheckedImportExampleGen
    from tfx_pipeline.components.model_gate import ModelGate
    from tfx_pipeline.evaluation import make_eval_config

    # Imports the Beam ingest's gzip TFRecords as they are, one ExampleGen split per directory
    # (ImportExampleGen + a check that names a damaged file).
    example_gen = CheckedImportExampleGen(
        input_base=data_root,
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name=s, pattern=f"{s}/*.tfrecord.gz") for s in splits]),
    ).with_id("ImportExampleGen")
    # Per-split statistics (TFDV) for validation and the run record.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    # The curated, checked-in schema (pinned to this data root's F and C).
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_path)
    # Compares every split's statistics with the schema; records anomalies.
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    # Stops the run with the list of anomalies (ExampleValidator alone never fails).
    gate = AnomaliesGate(anomalies=example_validator.outputs["anomalies"])

    custom_config = make_custom_config(experiment, list(class_names), code_version, feature_stats)
    # Self-supervised pre-training on pretrain + train (labels unused).
    pretrain = tfx.components.Trainer(
        run_fn=configs.PRETRAIN_RUN_FN, examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=list(configs.PRETRAIN_SPLITS)),
        eval_args=tfx.proto.EvalArgs(splits=[configs.EVAL_SPLIT]),
        custom_config=custom_config).with_id("pretrain_trainer")
    pretrain.add_upstream_node(gate)
    # Few-label fine-tuning from the pre-trained encoder, exports the serving SavedModel.
    finetune = tfx.components.Trainer(
        run_fn=configs.FINETUNE_RUN_FN, examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"], base_model=pretrain.outputs["model"],
        train_args=tfx.proto.TrainArgs(splits=list(configs.FINETUNE_SPLITS)),
        eval_args=tfx.proto.EvalArgs(splits=[configs.EVAL_SPLIT]),
        custom_config=custom_config).with_id("finetune_trainer")
    finetune.add_upstream_node(gate)
    # The latest model ModelGate blessed (the one pushed): the baseline of the Evaluator's
    # change threshold. Only ModelGate's blessings count: one the Evaluator gave a model that
    # then lost to the kNN was never served.
    resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing,
                                       producer_component_id=MODEL_GATE_ID, output_key="blessing"),
    ).with_id("latest_blessed_model_resolver")
    # TFMA on serving_default over the val split: top-1/top-3 overall and per region; blesses.
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=finetune.outputs["model"],
        baseline_model=resolver.outputs["model"], example_splits=[configs.EVAL_SPLIT],
        eval_config=make_eval_config(min_top1, top1_change_tolerance))
    # The Evaluator's verdict AND no worse than a kNN fitted on the same training labels, on
    # the same val rows (tfx_pipeline.blessing); records why a model is not pushed.
    model_gate = ModelGate(
        examples=example_gen.outputs["examples"], model=finetune.outputs["model"],
        evaluation=evaluator.outputs["evaluation"],
        evaluator_blessing=evaluator.outputs["blessing"],
        feature_dim=int(experiment["data"]["feature_dim"]),
        num_classes=int(experiment["data"]["num_classes"]),
        label_ratio=float(experiment["finetune"]["label_ratio"]),
        knn_tolerance=float(knn_tolerance), eval_split=configs.EVAL_SPLIT).with_id(MODEL_GATE_ID)
    # Copies a blessed model to <serving_dir>/<version>/ (TF Serving's layout): atomically,
    # space-checked, one writer per serving_dir (components.AtomicPusher).
    pusher = AtomicPusher(
        model=finetune.outputs["model"], model_blessing=model_gate.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)),
    ).with_id("Pusher")

    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name, pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator, gate, pretrain,
                    finetune, resolver, evaluator, model_gate, pusher],
        enable_cache=enable_cache, metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args))
