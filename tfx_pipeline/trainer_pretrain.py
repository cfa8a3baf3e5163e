"""Pre-training Trainer: ``run_fn(fn_args)`` runs ``csp_tf.train.pretrain`` on the examples.

Reads the ``pretrain`` and ``train`` splits (labels unused) of the ExampleGen artifact and
writes into ``fn_args.serving_model_dir`` a SavedModel (its ``location_embedding`` signature
is the pre-trained encoder) **and** the stage files the fine-tuning Trainer loads from
``fn_args.base_model``: ``config.yaml``, ``checkpoints/``, ``model.keras``, ``history.json``.
The rest (resumable stage dir, ``runtime.json``) is ``trainer_util.run_stage``.
"""

from __future__ import annotations

from tfx_pipeline import trainer_util


def _stage_files_next_to_the_model(fn_args, cfg, result, root, serving: str) -> None:
    trainer_util.copy_stage_files(result.output_dir, serving)


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (generic trainer, ``run_fn`` by dotted name)."""
    trainer_util.run_stage(fn_args, "pretrain", _stage_files_next_to_the_model, warmup=False)
