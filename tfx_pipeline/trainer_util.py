"""Helpers shared by the two Trainer module files: config, local workspace, artifact copies.

csp_tf's stages and ``write_saved_model`` write to local directories (os.makedirs, atomic
rename), while TFX artifact URIs may be ``gs://`` on Kubeflow. The Trainers therefore work in a
local temporary directory and copy the finished tree to the artifact with ``tf.io.gfile``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Dict, List, Tuple

import tensorflow as tf

from csp_tf.configs import ConfigError, ExperimentConfig

log = logging.getLogger("tfx_pipeline")

EXPERIMENT_KEY = "experiment"  # custom_config[...] = ExperimentConfig.to_dict()
CLASS_NAMES_KEY = "class_names"
CODE_VERSION_KEY = "code_version"  # only there to key the cache on the code
STAGE_FILES = ("config.yaml", "model.keras", "history.json", "checkpoints")
RUNTIME_FILE = "runtime.json"


def make_custom_config(experiment: Dict[str, Any], class_names: List[str],
                       code_version: str) -> Dict[str, Any]:
    """The Trainers' ``custom_config``: the experiment dict, the label names, the code version."""
    return {EXPERIMENT_KEY: experiment, CLASS_NAMES_KEY: list(class_names),
            CODE_VERSION_KEY: code_version}


def read_custom_config(custom_config: Dict[str, Any]) -> Tuple[ExperimentConfig, List[str]]:
    """(validated ExperimentConfig with data shapes set, class names) from ``custom_config``."""
    if not custom_config or EXPERIMENT_KEY not in custom_config:
        raise ConfigError("the Trainer's custom_config has no 'experiment' entry; build the "
                          "pipeline with tfx_pipeline.pipeline.create_pipeline")
    cfg = ExperimentConfig.from_dict(custom_config[EXPERIMENT_KEY]).validate()
    names = list(custom_config.get(CLASS_NAMES_KEY) or [])
    if not cfg.data.feature_dim or not cfg.data.num_classes:
        raise ConfigError("custom_config experiment lacks data.feature_dim / data.num_classes "
                          "(the runner fills them from the data root's metadata.json)")
    if names and len(names) != cfg.data.num_classes:
        raise ConfigError(f"{len(names)} class names for data.num_classes={cfg.data.num_classes}")
    return cfg, names


def runtime_info(cfg: ExperimentConfig) -> Dict[str, Any]:
    """What the runtime settings resolve to on this machine (``auto`` = on where a GPU is)."""
    from csp_tf.train import runtime

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    on_gpu = bool(gpus)
    precision = cfg.runtime.mixed_precision
    return {"gpus": gpus, "jit_compile": cfg.runtime.jit_compile,
            "jit_compile_resolved": runtime.use_jit(cfg.runtime.jit_compile),
            "mixed_precision": precision,
            "policy_resolved": "mixed_float16" if precision == "on" or (precision == "auto" and on_gpu)
            else "float32",
            "distribution": cfg.runtime.distribution, "chief": runtime.is_chief()}


def copy_tree(src: str, dst: str) -> None:
    """Recursively copies local ``src`` into ``dst`` (any tf.io.gfile filesystem)."""
    for dirpath, _, filenames in tf.io.gfile.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        tf.io.gfile.makedirs(target)
        for name in filenames:
            tf.io.gfile.copy(os.path.join(dirpath, name), os.path.join(target, name), overwrite=True)


def copy_stage_files(stage_dir: str, dst: str, names=STAGE_FILES) -> None:
    """Copies a stage's config.yaml, model.keras, history.json and checkpoints/ into ``dst``."""
    for name in names:
        path = os.path.join(stage_dir, name)
        if tf.io.gfile.isdir(path):
            copy_tree(path, os.path.join(dst, name))
        elif tf.io.gfile.exists(path):
            tf.io.gfile.makedirs(dst)
            tf.io.gfile.copy(path, os.path.join(dst, name), overwrite=True)


def write_json(path: str, value: Any) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(value, indent=2, default=str))
