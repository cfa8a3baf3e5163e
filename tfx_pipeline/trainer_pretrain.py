"""Pre-training Trainer: ``run_fn(fn_args)`` runs ``csp_tf.train.pretrain`` on the examples.

Reads the ``pretrain`` and ``train`` splits (labels unused) of the ExampleGen artifact and
writes into ``fn_args.serving_model_dir`` a SavedModel (its ``location_embedding`` signature
is the pre-trained encoder) **and** the stage files the fine-tuning Trainer loads from
``fn_args.base_model``: ``config.yaml``, ``checkpoints/``, ``model.keras``, ``history.json``.
The stage trains in ``fn_args.model_run_dir/stage`` (kept: a killed or preempted Trainer
re-run resumes from its last checkpoint); ``runtime.json`` goes to ``fn_args.model_run_dir``.
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
    stage_dir = trainer_util.stage_workdir(fn_args.model_run_dir, "stage")
    result = pretrain(cfg, examples.pretrain_input(cfg, splits), stage_dir,
                      feature_stats=trainer_util.read_feature_stats(fn_args.custom_config))
    if not result.completed:
        raise RuntimeError(f"pre-training stopped before its last epoch; its checkpoints are "
                           f"in {stage_dir}, a re-run resumes from them")
    if not info["chief"]:
        return
    work = tempfile.mkdtemp(prefix="csp-pretrain-export-")  # the export only: not resumable
    try:
        serving = os.path.join(work, "serving")
        write_saved_model(result.model, serving, config=cfg, class_names=class_names or None,
                          top_k=cfg.runtime.top_k, warmup=False)
        trainer_util.copy_stage_files(stage_dir, serving)
        trainer_util.copy_tree(serving, fn_args.serving_model_dir)
        if trainer_util.local_path(fn_args.model_run_dir) is None:  # stage not in the run dir
            trainer_util.copy_tree(os.path.join(stage_dir, "logs"),
                                   os.path.join(fn_args.model_run_dir, "logs"))
        trainer_util.write_json(os.path.join(fn_args.model_run_dir, trainer_util.RUNTIME_FILE),
                                dict(info, splits=sorted(splits), stage_dir=stage_dir,
                                     history=result.history))
    finally:
        shutil.rmtree(work, ignore_errors=True)
