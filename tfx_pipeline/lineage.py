"""Reading a pipeline run back from MLMD: executions per component, states, wall times,
outputs, and the lineage of an artifact (what it was made from)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set



def _event_types():
    """(output event types, input event types) of ml_metadata's Event.Type enum."""
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

    e = mlmd_pb2.Event
    return ((e.OUTPUT, e.DECLARED_OUTPUT, e.INTERNAL_OUTPUT),
            (e.INPUT, e.DECLARED_INPUT, e.INTERNAL_INPUT))


def connect(metadata_path: str):
    """An MLMD store over the SQLite file the LocalDagRunner wrote (read-only use)."""
    from ml_metadata.metadata_store import metadata_store
    from tfx.orchestration import metadata

    return metadata_store.MetadataStore(metadata.sqlite_metadata_connection_config(metadata_path))


def run_contexts(store, pipeline_name: str) -> List[Any]:
    """The ``pipeline_run`` contexts of ``pipeline_name``, oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    runs = [c for c in store.get_children_contexts_by_context(pipeline.id)
            if _context_type(store, c) == "pipeline_run"]
    if not runs:  # older MLMD layouts: runs are not linked as children
        runs = [c for c in store.get_contexts_by_type("pipeline_run")
                if _in_pipeline(store, c, pipeline.id)]
    return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def run_executions(store, run_context) -> List[Dict[str, Any]]:
    """Executions of one run: node id, component type, state, start/end (s), seconds, outputs."""
    from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

    outputs_t, inputs_t = _event_types()
    executions = store.get_executions_by_context(run_context.id)
    events = store.get_events_by_execution_ids([e.id for e in executions]) if executions else []
    artifact_ids = {ev.artifact_id for ev in events}
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list(artifact_ids))} if artifact_ids else {}
    out = []
    for exe in sorted(executions, key=lambda e: (e.create_time_since_epoch, e.id)):
        outputs: Dict[str, List[str]] = {}
        inputs: Dict[str, List[int]] = {}
        for ev in events:
            if ev.execution_id != exe.id or ev.artifact_id not in artifacts:
                continue
            key = ev.path.steps[0].key if ev.path.steps else ""
            if ev.type in outputs_t:
                outputs.setdefault(key, []).append(artifacts[ev.artifact_id].uri)
            elif ev.type in inputs_t:
                inputs.setdefault(key, []).append(ev.artifact_id)
        start, end = exe.create_time_since_epoch / 1000.0, exe.last_update_time_since_epoch / 1000.0
        out.append({
            "node_id": node_id_of(store, exe),
            "type": store.get_execution_types_by_id([exe.type_id])[0].name,
            "execution_id": exe.id,
            "state": mlmd_pb2.Execution.State.Name(exe.last_known_state),
            "start": start, "end": end, "seconds": round(max(0.0, end - start), 2),
            "outputs": outputs, "input_artifact_ids": inputs,
        })
    return out


def node_id_of(store, execution) -> str:
    """The pipeline node id of an execution (its ``node`` context is ``<pipeline>.<node id>``)."""
    for ctx in store.get_contexts_by_execution(execution.id):
        if _context_type(store, ctx) == "node":
            return ctx.name.split(".", 1)[-1]
    return ""


def upstream_artifacts(store, artifact_id: int, max_depth: int = 20) -> Dict[int, str]:
    """{artifact id: type name} of every artifact ``artifact_id`` was derived from."""
    outputs_t, inputs_t = _event_types()
    seen: Dict[int, str] = {}
    frontier: Set[int] = {artifact_id}
    for _ in range(max_depth):
        if not frontier:
            break
        events = store.get_events_by_artifact_ids(list(frontier))
        producers = {ev.execution_id for ev in events if ev.type in outputs_t}
        if not producers:
            break
        in_events = store.get_events_by_execution_ids(list(producers))
        parents = {ev.artifact_id for ev in in_events if ev.type in inputs_t}
        new = parents - set(seen) - {artifact_id}
        for art in store.get_artifacts_by_id(list(new)):
            seen[art.id] = store.get_artifact_types_by_id([art.type_id])[0].name
        frontier = new
    return seen


def artifact_by_uri(store, uri: str) -> Optional[Any]:
    found = store.get_artifacts_by_uri(uri)
    return found[-1] if found else None


def _context_type(store, context) -> str:
    return store.get_context_types_by_id([context.type_id])[0].name


def _in_pipeline(store, context, pipeline_id: int) -> bool:
    return any(p.id == pipeline_id for p in store.get_parent_contexts_by_context(context.id))
