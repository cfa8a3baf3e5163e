"""Runs the csp-tf pipeline locally: ``LocalDagRunner``, SQLite MLMD, DirectRunner Beam.

``run_local(...)`` is what ``csp-tf pipeline run`` and the README's demo job call; it returns
where everything is and how long each component took (from MLMD execution timestamps).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from tfx_pipeline import configs
from tfx_pipeline.progress import component_progress

log = logging.getLogger("tfx_pipeline")


SCHEMA_SUBDIR = "_schema"  # rendered schemas under the pipeline root


class PipelineRunError(RuntimeError):
    """A component failed; the message names it and carries the component's own message."""


def pipeline_for(config, data_root: str, schema_dir: str, **kwargs):
    """``create_pipeline(**kwargs)`` for one data root: its ``metadata.json`` (any tf.io.gfile
    filesystem, ``gs://`` included) gives the config's data shapes, the class names and feature
    stats; the pinned schema is written under ``schema_dir``."""
    from csp_tf.capacity import resolve_capacity
    from csp_tf.train.data_root import DataRoot
    from tfx_pipeline.pipeline import create_pipeline
    from tfx_pipeline.validation import render_schema

    root = DataRoot.open(data_root)
    # capacity=auto: fine-tuning starts from the pipeline's pre-trained encoder, so only its
    # epochs follow the rule (csp_tf.capacity)
    cfg = resolve_capacity(root.configure(config), None, keep_encoder=True).validate()
    return create_pipeline(
        data_root=data_root, experiment=cfg.to_dict(), class_names=root.class_names,
        schema_path=render_schema(cfg.data.feature_dim, cfg.data.num_classes, schema_dir),
        feature_stats=root.feature_stats, **kwargs)  # feature_stats: into custom_config


def code_version() -> str:
    """SHA-256 (16 hex) of the csp_tf and tfx_pipeline sources: new code, no stale cache hits."""
    import csp_tf
    import tfx_pipeline

    digest = hashlib.sha256()
    for package in (csp_tf, tfx_pipeline):
        root = os.path.dirname(package.__file__)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith((".py", ".pbtxt")):
                    path = os.path.join(dirpath, name)
                    digest.update(os.path.relpath(path, root).encode())
                    with open(path, "rb") as f:
                        digest.update(f.read())
    return digest.hexdigest()[:16]


def run_local(pipeline_root: str, data_root: str, serving_dir: str, config,
              metadata_path: Optional[str] = None, beam_args: Optional[Sequence[str]] = None,
              enable_cache: bool = True, *, pipeline_name: str = configs.PIPELINE_NAME,
              min_top1: float = configs.MIN_TOP1_ACCURACY,
              top1_change_tolerance: float = configs.TOP1_CHANGE_TOLERANCE,
              knn_tolerance: float = configs.KNN_TOLERANCE,
              progress: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Runs the whole pipeline with ``LocalDagRunner`` and returns a summary.

    Args:
      pipeline_root: artifact root (created).
      data_root: an ingested data root.
      serving_dir: where Pusher writes ``<version>/`` directories.
      config: an ``ExperimentConfig`` (data shapes are filled from the data root).
      metadata_path: SQLite MLMD file (default ``<pipeline_root>/metadata.sqlite``).
      beam_args: Beam options (default ``configs.LOCAL_BEAM_ARGS``: one DirectRunner worker
        process per core).
      enable_cache: reuse unchanged components' outputs from earlier runs.
      pipeline_name / min_top1 / top1_change_tolerance / knn_tolerance: see
        ``create_pipeline``.
      progress: gets a line as each component starts and ends (default: the
        ``tfx_pipeline`` logger at INFO, which the terminal shows).

    Returns:
      ``{"run_id", "pipeline_root", "metadata_path", "serving_dir", "blessed",
      "not_blessed_reason" (ModelGate's reason; "" when blessed), "pushed",
      "pushed_dir", "model_dir", "model_run_dir", "evaluation_dir", "components":
      {node_id: {"state", "seconds", "outputs", "type"}}, "component_seconds": {node_id: s},
      "wall_seconds"}``.

    Raises:
      PipelineRunError: a component failed (the message names it and says why).
    """
    from tfx import v1 as tfx

    pipeline_root = os.path.abspath(pipeline_root)
    os.makedirs(pipeline_root, exist_ok=True)
    metadata_path = os.path.abspath(metadata_path or os.path.join(pipeline_root, configs.LOCAL_METADATA_FILE))
    serving_dir = os.path.abspath(serving_dir)
    pipeline = pipeline_for(
        config, os.path.abspath(data_root), os.path.join(pipeline_root, SCHEMA_SUBDIR),
        pipeline_name=pipeline_name, pipeline_root=pipeline_root, serving_dir=serving_dir,
        beam_pipeline_args=list(configs.LOCAL_BEAM_ARGS if beam_args is None else beam_args),
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(metadata_path),
        enable_cache=enable_cache, min_top1=min_top1,
        top1_change_tolerance=top1_change_tolerance, knn_tolerance=knn_tolerance,
        code_version=code_version())
    log.info("pipeline %s: data %s -> root %s, serving %s", pipeline_name, data_root,
             pipeline_root, serving_dir)
    from csp_tf.data import beam_data_plane

    beam_data_plane.install()  # Beam components on multi-worker DirectRunner modes lose elements without it
    start = time.time()
    error: Optional[BaseException] = None
    try:
        with component_progress(len(pipeline.components), progress or log.info):
            tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as exc:  # noqa: BLE001 - re-raised below with the failing component named
        error = exc
    wall = time.time() - start
    summary = summarize_run(metadata_path, pipeline_name, since=start)
    summary.update(pipeline_root=pipeline_root, metadata_path=metadata_path,
                   serving_dir=serving_dir, wall_seconds=round(wall, 1))
    if error is not None:
        failed = [n for n, c in summary["components"].items() if c["state"] == "FAILED"]
        where = f"component {failed[0]!r}" if failed else "the pipeline"
        raise PipelineRunError(f"{where} failed: {type(error).__name__}: {error}") from error
    return summary


def summarize_run(metadata_path: str, pipeline_name: str,
                  since: Optional[float] = None) -> Dict[str, Any]:
    """The latest run of ``pipeline_name`` in MLMD, summarized (see ``run_local``)."""
    from tfx_pipeline import lineage

    store = lineage.connect(metadata_path)
    runs = lineage.run_contexts(store, pipeline_name)
    if since is not None:
        runs = [r for r in runs if r.create_time_since_epoch / 1000.0 >= since - 1.0]
    if not runs:
        return {"run_id": None, "components": {}, "component_seconds": {}, "blessed": False,
                "pushed": False}
    run = runs[-1]
    components: Dict[str, Dict[str, Any]] = {}
    for exe in lineage.run_executions(store, run):
        components[exe["node_id"]] = {k: exe[k] for k in ("state", "seconds", "outputs", "type")}
    out: Dict[str, Any] = {"run_id": run.name, "components": components,
                           "component_seconds": {n: c["seconds"] for n, c in components.items()}}
    out["model_dir"] = _first(components, "finetune_trainer", "model")
    out["model_run_dir"] = _first(components, "finetune_trainer", "model_run")
    out["evaluation_dir"] = _first(components, "Evaluator", "evaluation")
    # The Pusher obeys ModelGate (the Evaluator's verdict and the kNN check), not the Evaluator.
    blessing = _first(components, "ModelGate", "blessing")
    out["blessed"] = bool(blessing) and os.path.exists(os.path.join(blessing, "BLESSED"))
    out["not_blessed_reason"] = _blessing_reason(store, blessing)
    push = _first(components, "Pusher", "pushed_model")
    out["pushed"], out["pushed_dir"] = _pushed(store, push)
    return out


def _blessing_reason(store, blessing_uri: Optional[str]) -> str:
    """ModelGate's reason for not blessing ("" when blessed or when it did not run)."""
    from tfx_pipeline import lineage
    from tfx_pipeline.components.model_gate import REASON_KEY

    artifact = lineage.artifact_by_uri(store, blessing_uri) if blessing_uri else None
    if artifact is None or REASON_KEY not in artifact.custom_properties:
        return ""
    return artifact.custom_properties[REASON_KEY].string_value


def _first(components: Dict[str, Dict[str, Any]], node: str, key: str) -> Optional[str]:
    uris: List[str] = components.get(node, {}).get("outputs", {}).get(key, [])
    return uris[0] if uris else None


def _pushed(store, push_uri: Optional[str]):
    """(pushed?, destination dir) from the PushedModel artifact's custom properties."""
    from tfx_pipeline import lineage

    if not push_uri:
        return False, None
    artifact = lineage.artifact_by_uri(store, push_uri)
    if artifact is None:
        return False, None
    props = artifact.custom_properties
    pushed = "pushed" in props and props["pushed"].int_value == 1
    dest = props["pushed_destination"].string_value if "pushed_destination" in props else None
    return pushed, dest or None
