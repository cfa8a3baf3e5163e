"""Helpers shared by the tfx_pipeline tests: the tiny config, Beam args, serving-dir listing."""

from __future__ import annotations

import os
from typing import Any, Dict, List

# One DirectRunner worker in this process: Beam components start in a fraction of the time.
TEST_BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]

TEST_OVERRIDES: Dict[str, Any] = {
    "pretrain.epochs": 1, "pretrain.batch_size": 2048,
    "finetune.epochs": 1, "finetune.image_classifier_epochs": 1, "finetune.batch_size": 1024,
    "finetune.label_ratio": 0.5, "finetune.sampler": "shuffle", "finetune.min_steps": 0,
    "finetune.image_classifier_steps": 30,
    "location_encoder.hidden_dim": 32, "location_encoder.num_filts": 32,
    "location_encoder.position.frequency_num": 8,
    "runtime.progress": False, "runtime.top_k": 3,
}


def tiny_config():
    """The demo preset shrunk to one batch per stage (one tf.function trace each)."""
    from csp_tf.configs import get_preset

    return get_preset("demo").override(TEST_OVERRIDES)


def version_dirs(serving_dir: str) -> List[str]:
    """Pushed version directories under a serving dir (numeric names), sorted."""
    if not os.path.isdir(serving_dir):
        return []
    return sorted(d for d in os.listdir(serving_dir) if d.isdigit())
