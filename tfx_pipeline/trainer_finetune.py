"""Fine-tuning Trainer: ``run_fn(fn_args)`` runs ``csp_tf.train.finetune`` from the base model.

``fn_args.base_model`` is the pre-training Trainer's ``Format-Serving`` directory (TFX 1.16
``path_utils.serving_model_path``), which holds the pre-training stage files. Reads the
label-ratio subset of the ``train`` split, writes the serving SavedModel (the contract of
docs/architecture.md) at exactly ``fn_args.serving_model_dir`` for Evaluator and Pusher, and
``metrics.json`` (``csp_tf.evaluate`` on the eval split: fused / image-only / location-only),
``runtime.json`` and the stage files to ``fn_args.model_run_dir``. The stage trains in
``fn_args.model_run_dir/stage`` (kept: a killed or preempted Trainer re-run resumes from its
last checkpoint).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from tfx_pipeline import examples, trainer_util

log = logging.getLogger("tfx_pipeline")

METRICS_FILE = "metrics.json"


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (generic trainer, ``run_fn`` by dotted name)."""
    from csp_tf.evaluate import evaluate_model
    from csp_tf.export import write_saved_model
    from csp_tf.train import finetune

    cfg, class_names = trainer_util.read_custom_config(fn_args.custom_config)
    info = trainer_util.runtime_info(cfg)
    log.info("finetune Trainer: runtime %s, base model %s", info, fn_args.base_model)
    splits = examples.files_by_split(fn_args.train_files)
    eval_splits = examples.files_by_split(fn_args.eval_files)
    stage_dir = trainer_util.stage_workdir(fn_args.model_run_dir, "stage")
    base = None
    if fn_args.base_model:
        base = trainer_util.stage_workdir(fn_args.model_run_dir, "base")
        trainer_util.copy_stage_files(fn_args.base_model, base, ("config.yaml", "checkpoints"))
    loc, img = examples.finetune_inputs(cfg, splits)
    # The probe's L2 and the fusion weights are chosen on the eval split (val), as in the CLI.
    eval_files = [f for name in sorted(eval_splits) for f in eval_splits[name]]
    validation = examples.load_arrays(eval_files, cfg.data.feature_dim)
    result = finetune(cfg, loc, img, stage_dir, base_model_dir=base,
                      feature_stats=trainer_util.read_feature_stats(fn_args.custom_config),
                      image_arrays=examples.image_classifier_rows(cfg, splits),
                      validation=validation)
    if not result.completed:
        raise RuntimeError(f"fine-tuning stopped before its last epoch; its checkpoints are in "
                           f"{stage_dir}, a re-run resumes from them")
    if not info["chief"]:
        return
    work = tempfile.mkdtemp(prefix="csp-finetune-export-")  # the export only: not resumable
    try:
        serving = os.path.join(work, "serving")
        write_saved_model(result.model, serving, config=cfg, class_names=class_names or None,
                          top_k=cfg.runtime.top_k)
        trainer_util.copy_tree(serving, fn_args.serving_model_dir)
        metrics = evaluate_model(result.model, validation)
        run_dir = fn_args.model_run_dir
        trainer_util.write_json(os.path.join(run_dir, METRICS_FILE),
                                {"splits": sorted(eval_splits), "label_ratio": cfg.finetune.label_ratio,
                                 "metrics": metrics})
        trainer_util.write_json(os.path.join(run_dir, trainer_util.RUNTIME_FILE),
                                dict(info, splits=sorted(splits), base_model=fn_args.base_model,
                                     stage_dir=stage_dir, history=result.history))
        if trainer_util.local_path(run_dir) is None:  # the stage is not in the run dir itself
            trainer_util.copy_stage_files(stage_dir, os.path.join(run_dir, "stage"),
                                          ("config.yaml", "history.json", "logs"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
