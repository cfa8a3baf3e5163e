"""Fine-tuning Trainer: ``run_fn(fn_args)`` runs ``csp_tf.train.finetune`` from the base model.

``fn_args.base_model`` is the pre-training Trainer's ``Format-Serving`` directory (TFX 1.16
``path_utils.serving_model_path``), which holds the pre-training stage files. Trains on the
label-ratio subset of the ``train`` split (the probe's L2 and the fusion are chosen on the eval
split, ``val``, as in the CLI), writes the serving SavedModel (the contract of
docs/architecture.md) at exactly ``fn_args.serving_model_dir`` for Evaluator and Pusher, and
``metrics.json`` (``csp_tf.evaluate`` on ``val``: fused / image-only / location-only) to
``fn_args.model_run_dir``. The rest (resumable stage dir, ``runtime.json``) is
``trainer_util.run_stage``.
"""

from __future__ import annotations

import os

from tfx_pipeline import trainer_util
from tfx_pipeline.configs import EVAL_SPLIT

METRICS_FILE = "metrics.json"


def _write_metrics(fn_args, cfg, result, root, serving: str) -> None:
    from csp_tf.evaluate import evaluate_model

    metrics = evaluate_model(result.model, root.labeled(EVAL_SPLIT))
    trainer_util.write_json(os.path.join(fn_args.model_run_dir, METRICS_FILE),
                            {"splits": [EVAL_SPLIT], "label_ratio": cfg.finetune.label_ratio,
                             "metrics": metrics})


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (generic trainer, ``run_fn`` by dotted name)."""
    trainer_util.run_stage(fn_args, "finetune", _write_metrics)
