"""The Trainers' shared ``run_fn`` scaffold (``run_stage``) and its helpers: config, data,
stable workspace, artifact copies.

A Trainer's data is a ``csp_tf.train.data_root.DataRoot`` built from ``fn_args.train_files`` +
``eval_files`` (what ImportExampleGen wrote, so MLMD lineage is the whole truth about a model's
data) with shapes, class names and feature statistics from ``custom_config``; its inputs come
from ``csp_tf.train.data_root.stage_inputs``, as for the CLI and the experiment protocol.

``fn_args.data_accessor`` is not used, for three reasons. (1) Its ``tf_dataset_factory``
(tfx_bsl ``TensorFlowDatasetOptions``) offers a record shuffle buffer with one ``shuffle_seed``
and record-level interleaving; the stage inputs need ``reader.make_dataset``'s order, a function
of (seed, epoch) for every epoch (windowed permutations of chunks of files), which is what lets
a killed Trainer resume mid-epoch on the same batches and what makes the inputs equal to those
the CLI builds from the data root (tests/tfx_pipeline/test_units.py, test_trainer_resume.py).
(2) The curated Schema has no ``shape``s (only ``value_count``s: ExampleValidator's job), so
the accessor would parse every feature as a SparseTensor. (3) The labeled splits are read one
file at a time so that a corrupt record raises a DataError naming its file. The Schema the
Trainers are wired to is still read: ``check_schema`` fails the run when it does not describe
the rows ``csp_tf.data.schema`` parses (a feature missing, another type or width).

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

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import tensorflow as tf

from csp_tf.configs import ConfigError, ExperimentConfig
from csp_tf.train.data_root import DataRoot

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


# Called after a stage finished, on the chief, with (fn_args, config, StageResult, DataRoot,
# the serving dir being built): writes what is the Trainer's own (files into the serving dir,
# metrics).
Finish = Callable[[Any, ExperimentConfig, Any, DataRoot, str], None]


def run_stage(fn_args, stage: str, finish: Finish, warmup: bool = True) -> None:
    """A Trainer's ``run_fn``: the ``csp_tf.train`` ``stage`` on the examples artifact, trained
    in ``<model_run_dir>/stage`` (resumable), exported to ``fn_args.serving_model_dir``, with
    ``runtime.json`` in ``fn_args.model_run_dir``."""
    import csp_tf.train
    from csp_tf.export import write_saved_model
    from csp_tf.train.data_root import stage_inputs

    cfg, class_names = read_custom_config(fn_args.custom_config)
    if getattr(fn_args, "schema_path", None):
        check_schema(fn_args.schema_path, cfg.data.feature_dim)
    root = DataRoot.from_examples(list(fn_args.train_files) + list(fn_args.eval_files or []),
                                  cfg.data.feature_dim, cfg.data.num_classes, class_names,
                                  read_feature_stats(fn_args.custom_config))
    info = runtime_info(cfg)
    log.info("%s Trainer: runtime %s, base model %s", stage, info, fn_args.base_model)
    run_dir = fn_args.model_run_dir
    stage_dir = stage_workdir(run_dir, "stage")
    kwargs = stage_inputs(cfg, root, stage)
    if stage == "finetune" and fn_args.base_model:
        kwargs["base_model_dir"] = stage_workdir(run_dir, "base")
        copy_stage_files(fn_args.base_model, kwargs["base_model_dir"], ("config.yaml", "checkpoints"))
    # One Trainer per stage directory (a retried pod while the first still runs is refused,
    # naming it); only the chief writes there.
    from csp_tf.locks import writer_lock

    lock = writer_lock(stage_dir, f"TFX {stage} Trainer") if info["chief"] else None
    with lock or contextlib.nullcontext():
        result = getattr(csp_tf.train, stage)(cfg, output_dir=stage_dir, **kwargs)
    if not result.completed:
        raise RuntimeError(f"{stage} stopped before its last epoch; its checkpoints are in "
                           f"{stage_dir}, a re-run resumes from them")
    if not info["chief"]:
        return
    work = tempfile.mkdtemp(prefix=f"csp-{stage}-export-")  # the export only: not resumable
    try:
        serving = os.path.join(work, "serving")
        write_saved_model(result.model, serving, config=cfg, class_names=class_names or None,
                          top_k=cfg.runtime.top_k, warmup=warmup)
        finish(fn_args, cfg, result, root, serving)
        copy_tree(serving, fn_args.serving_model_dir)
        write_json(os.path.join(run_dir, RUNTIME_FILE),
                   dict(info, splits=sorted(root.splits), base_model=fn_args.base_model,
                        stage_dir=stage_dir, history=result.history))
        if local_path(run_dir) is None:  # the stage is not in the run dir itself
            copy_stage_files(stage_dir, os.path.join(run_dir, "stage"),
                             ("config.yaml", "history.json", "logs"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_schema(schema_path: str, feature_dim: int) -> None:
    """ConfigError unless the Schema at ``schema_path`` has every feature of
    ``csp_tf.data.schema.feature_spec(feature_dim)`` with its type and width."""
    import numpy as np
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils

    from csp_tf.data.schema import feature_spec

    kinds = {tf.string: schema_pb2.BYTES, tf.float32: schema_pb2.FLOAT, tf.int64: schema_pb2.INT}
    found = {f.name: f for f in io_utils.SchemaReader().read(schema_path).feature}
    for name, spec in feature_spec(feature_dim).items():
        width = int(np.prod(spec.shape))
        f = found.get(name)
        problem = ("is missing" if f is None else
                   f"has type {schema_pb2.FeatureType.Name(f.type)}" if f.type != kinds[spec.dtype]
                   else f"has {f.value_count.max} values" if f.value_count.max not in (0, width)
                   else None)
        if problem:
            raise ConfigError(f"the Trainer's Schema ({schema_path}) does not describe csp-tf "
                              f"rows: feature {name!r} {problem}; csp-tf parses it as "
                              f"{spec.dtype.name}[{width}]")
