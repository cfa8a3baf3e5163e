"""Pre-training Trainer: ``run_fn(fn_args)`` runs ``csp_tf.train.pretrain`` on the examples.

Reads the ``pretrain`` and ``train`` splits (labels unused) of the ExampleGen artifact and
writes into ``fn_args.serving_model_dir`` a SavedModel (its ``location_embedding`` signature
is the pre-trained encoder) **and** the stage files the fine-tuning Trainer loads from
``fn_args.base_model``: ``config.yaml``, ``checkpoints/``, ``model.keras``, ``history.json``.
TensorBoard logs and ``runtime.json`` go to ``fn_args.model_run_dir``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from tfx_pipeline import examples, trainer_util

log = logging.getLogger("tfx_pipeline")


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (generic trainer, ``run_fn`` by dotted name)."""
    from csp_tf.export import write_saved_model
    from csp_tf.train import pretrain

    cfg, class_names = trainer_util.read_custom_config(fn_args.custom_config)
    info = trainer_util.runtime_info(cfg)
    log.info("pretrain Trainer: runtime %s", info)
    splits = examples.files_by_split(fn_args.train_files)
    work = tempfile.mkdtemp(prefix="csp-pretrain-")
    try:
        stage_dir = os.path.join(work, "stage")
        result = pretrain(cfg, examples.pretrain_input(cfg, splits), stage_dir)
        if not result.completed:
            raise RuntimeError("pre-training stopped before its last epoch")
        if not info["chief"]:
            return
        serving = os.path.join(work, "serving")
        write_saved_model(result.model, serving, config=cfg, class_names=class_names or None,
                          top_k=cfg.runtime.top_k, warmup=False)
        trainer_util.copy_stage_files(stage_dir, serving)
        trainer_util.copy_tree(serving, fn_args.serving_model_dir)
        trainer_util.copy_tree(os.path.join(stage_dir, "logs"), os.path.join(fn_args.model_run_dir, "logs"))
        trainer_util.write_json(os.path.join(fn_args.model_run_dir, trainer_util.RUNTIME_FILE),
                                dict(info, splits=sorted(splits), history=result.history))
    finally:
        shutil.rmtree(work, ignore_errors=True)
