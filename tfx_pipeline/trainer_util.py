"""Helpers shared by the two Trainer module files: config, stable workspace, artifact copies.

csp_tf's stages and ``write_saved_model`` write to local directories (os.makedirs, atomic
rename), while TFX artifact URIs may be ``gs://`` on Kubeflow. A stage trains in a STABLE
directory, :func:`stage_workdir` (under ``fn_args.model_run_dir``), never in a temporary one:
its checkpoints survive a killed or preempted Trainer, and the re-run resumes where the last
checkpoint left off. A ``gs://bucket/...`` run dir is used through its Cloud Storage FUSE
mount ``/gcs/bucket/...`` (Vertex AI Pipelines mounts it); only where no such mount exists
does the stage fall back to a local directory (not resumable, with a warning). Finished trees
are copied to the artifacts with ``tf.io.gfile``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf

from csp_tf.configs import ConfigError, ExperimentConfig

log = logging.getLogger("tfx_pipeline")

EXPERIMENT_KEY = "experiment"  # custom_config[...] = ExperimentConfig.to_dict()
CLASS_NAMES_KEY = "class_names"
CODE_VERSION_KEY = "code_version"  # only there to key the cache on the code
STAGE_FILES = ("config.yaml", "model.keras", "history.json", "checkpoints")
RUNTIME_FILE = "runtime.json"


FEATURE_STATS_KEY = "feature_stats"  # {"mean": [...], "std": [...]} from the ingest's metadata


def make_custom_config(experiment: Dict[str, Any], class_names: List[str],
                       code_version: str, feature_stats: Optional[Any] = None) -> Dict[str, Any]:
    """The Trainers' ``custom_config``: the experiment dict, the label names, the code version
    and the image-feature statistics the model standardises with (None: not available)."""
    out = {EXPERIMENT_KEY: experiment, CLASS_NAMES_KEY: list(class_names),
           CODE_VERSION_KEY: code_version}
    if feature_stats is not None:
        out[FEATURE_STATS_KEY] = {"mean": [float(v) for v in feature_stats[0]],
                                  "std": [float(v) for v in feature_stats[1]]}
    return out


def read_feature_stats(custom_config: Dict[str, Any]):
    """(mean, std) arrays from ``custom_config``; None when the data root had none."""
    import numpy as np

    stats = (custom_config or {}).get(FEATURE_STATS_KEY)
    if not stats:
        return None
    return np.asarray(stats["mean"], np.float64), np.asarray(stats["std"], np.float64)


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


GCS_FUSE_ROOT = "/gcs"  # where Vertex AI Pipelines mounts gs:// buckets


def local_path(uri: str) -> Optional[str]:
    """A local filesystem path for ``uri``: itself when local, ``/gcs/<bucket>/...`` for
    ``gs://<bucket>/...`` when that FUSE mount exists, else None."""
    if "://" not in uri:
        return uri
    if uri.startswith("gs://") and os.path.isdir(GCS_FUSE_ROOT):
        return os.path.join(GCS_FUSE_ROOT, uri[len("gs://"):])
    return None


def stage_workdir(run_dir: str, name: str) -> str:
    """The stable directory a stage trains in: ``<run_dir>/<name>`` (``fn_args.model_run_dir``),
    kept after the run so that a re-run of a killed Trainer resumes from its checkpoints."""
    local = local_path(run_dir)
    if local is None:
        fallback = os.path.join(tempfile.gettempdir(), "csp-tfx-stages",
                                hashlib.sha256(run_dir.encode()).hexdigest()[:16], name)
        log.warning("model_run_dir %s has no local mount: training in %s, which does NOT "
                    "survive a preempted pod (mount the bucket, e.g. at %s)", run_dir, fallback,
                    GCS_FUSE_ROOT)
        local = os.path.dirname(fallback)
    path = os.path.join(local, name)
    os.makedirs(path, exist_ok=True)
    return path


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
