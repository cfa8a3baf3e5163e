"""Helpers of the csp_tf.experiments tests (imported by conftest and the test modules)."""

from __future__ import annotations

import os
from typing import Dict

from csp_tf.configs import get_preset


def tiny_experiment_config():
    """The demo preset shrunk until a cell trains in seconds on 2 CPU cores."""
    cfg = get_preset("demo")
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    cfg.location_encoder.position.frequency_num = 8
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 1, 256
    cfg.finetune.epochs, cfg.finetune.batch_size = 2, 128
    cfg.finetune.image_classifier_epochs = 2
    cfg.finetune.min_steps, cfg.finetune.image_classifier_steps = 0, 50
    cfg.runtime.progress = False
    cfg.runtime.jit_compile = "off"
    return cfg


def stage_mtimes(out_dir: str) -> Dict[str, float]:
    """model.keras modification times of every stage under an experiment dir."""
    found = {}
    for dirpath, _, files in os.walk(out_dir):
        if "model.keras" in files:
            path = os.path.join(dirpath, "model.keras")
            found[os.path.relpath(path, out_dir)] = os.path.getmtime(path)
    return found
