"""Checked checkpoint restores: nothing restores "partially" without saying so.

``tf.train.Checkpoint.restore(...).expect_partial()`` silences every mismatch: after a layer
is renamed, a resume or a fine-tuning base load restores nothing and training silently starts
from scratch. :func:`restore_checked` first reads the whole checkpoint (so a corrupt file fails
before any variable changes, naming the files), then restores and asserts that every variable
the caller needs was matched by the checkpoint's object graph, failing with the missing
variables' names.

Matching follows the checkpoint's object graph (edges by attribute name), as the restore does,
so it is right even when a variable's tensor is stored under another path (a variable reachable
from both the model and the optimizer is saved once, under its shortest path).
"""

from __future__ import annotations

import glob
from collections import deque
from typing import Dict, Iterable, List, Optional

import keras
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from csp_tf.configs import ConfigError

try:  # keras.Variable is an export alias; layers hold this backend-independent base class
    from keras.src.backend.common.variables import KerasVariable as _KerasVariable
    _VARIABLE_TYPES: tuple = (tf.Variable, keras.Variable, _KerasVariable)
except ImportError:  # pragma: no cover - other Keras layouts
    _VARIABLE_TYPES = (tf.Variable, keras.Variable)

_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE_ATTRIBUTE = "VARIABLE_VALUE"
_MAX_LISTED = 20


class CheckpointError(ConfigError):
    """A checkpoint that cannot be read, or that lacks variables the run needs.

    A ConfigError so the ``csp-tf`` CLI reports it as one line, like the other input errors.
    """


def checkpoint_files(prefix: str) -> List[str]:
    """The files of the checkpoint ``prefix`` (``.index`` and ``.data-*``), for messages."""
    return sorted(glob.glob(prefix + ".index") + glob.glob(prefix + ".data-*")) or [prefix]


def _is_variable(obj) -> bool:
    return isinstance(obj, _VARIABLE_TYPES)


def _name(variable) -> str:
    return str(getattr(variable, "path", None) or getattr(variable, "name", "?"))


def read_checkpoint(prefix: str, what: str) -> tf.train.CheckpointReader:
    """Opens ``prefix`` and reads every tensor once (TF checks each one's CRC).

    Raises:
      CheckpointError: naming the checkpoint files, when the index or a data file is missing,
        truncated or corrupt.
    """
    files = ", ".join(checkpoint_files(prefix))
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception as exc:  # OpError (DataLoss, NotFound), IndexError (truncated), ...
        message = getattr(exc, "message", None) or str(exc)
        raise CheckpointError(
            f"{what}: checkpoint {prefix} cannot be read ({type(exc).__name__}: "
            f"{message.strip().splitlines()[0] if message.strip() else exc!r}). Files: {files}. "
            "It is corrupt or incomplete: delete it (and its 'checkpoint' entry) to fall back "
            "to an earlier checkpoint, or start the stage afresh.") from exc
    if not reader.has_tensor(_OBJECT_GRAPH_KEY):
        raise CheckpointError(f"{what}: {prefix} is not an object-based (TF2) checkpoint: it "
                              f"has no object graph. Files: {files}")
    return reader


def matched_variables(root, reader: tf.train.CheckpointReader) -> Dict[int, object]:
    """{id(variable): variable} of every variable under ``root`` that the checkpoint holds a
    value for, found by walking the saved object graph alongside the Python objects."""
    graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
        reader.get_tensor(_OBJECT_GRAPH_KEY))
    matched: Dict[int, object] = {}
    seen = set()
    queue = deque([(root, 0)])
    while queue:
        obj, node_id = queue.popleft()
        if (id(obj), node_id) in seen:
            continue
        seen.add((id(obj), node_id))
        node = graph.nodes[node_id]
        if any(a.name == _VALUE_ATTRIBUTE and
                                     reader.has_tensor(a.checkpoint_key)
                                     for a in node.attributes):
            matched[id(obj)] = obj
        saved_children = {c.local_name: c.node_id for c in node.children}
        if not saved_children:
            continue
        for name, child in tf.train.TrackableView(obj).children(obj).items():
            if name in saved_children:
                queue.append((child, saved_children[name]))
    return matched


def all_variables(root) -> List[object]:
    """Every variable reachable from ``root`` (each once), in breadth-first order."""
    out, seen, queue = [], set(), deque([root])
    while queue:
        obj = queue.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if _is_variable(obj):
            out.append(obj)
        queue.extend(tf.train.TrackableView(obj).children(obj).values())
    return out


def restore_checked(checkpoint: tf.train.Checkpoint, prefix: str, *,
                    required: Dict[str, Iterable], what: str,
                    optional: Optional[Dict[str, Iterable]] = None,
                    resume: bool = False) -> Dict[str, int]:
    """Restores ``checkpoint`` from ``prefix`` after checking it, like
    ``checkpoint.read(prefix).expect_partial()`` but never silently partial.

    Args:
      checkpoint: the object graph to restore into.
      prefix: checkpoint path prefix (``.../ckpt-3``).
      required: group name → variables that must all be restored (e.g. ``{"location
        encoder": model.location_encoder.weights}``).
      what: what is being restored, for messages (``"resume pretrain"``).
      optional: group name → variables restored if present (counted, not required).
      resume: ``checkpoint.restore`` (also restores the save counter a CheckpointManager
        numbers from) instead of ``checkpoint.read``.

    Returns:
      group name → number of its variables restored (required and optional groups).

    Raises:
      CheckpointError: the checkpoint cannot be read (naming its files), or required
        variables have no value in it (naming up to 20 of them and the checkpoint).
    """
    reader = read_checkpoint(prefix, what)
    matched = matched_variables(checkpoint, reader)
    counts, missing = {}, []
    for group, variables in required.items():
        variables = list(variables)
        absent = [v for v in variables if id(v) not in matched]
        missing += [f"{group}: {_name(v)}" for v in absent]
        counts[group] = len(variables) - len(absent)
    if missing:
        listed = "; ".join(missing[:_MAX_LISTED])
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        raise CheckpointError(
            f"{what}: checkpoint {prefix} has no value for {len(missing)} variable(s) this run "
            f"needs: {listed}{more}. Was a layer renamed or the architecture changed since it "
            "was written? Restoring would silently start those weights from scratch.")
    for group, variables in (optional or {}).items():
        counts[group] = sum(id(v) in matched for v in variables)
    try:
        load = checkpoint.restore if resume else checkpoint.read
        load(prefix).expect_partial()  # extra entries (e.g. the base's class head) are fine
    except (tf.errors.OpError, ValueError) as exc:  # e.g. a shape mismatch
        raise CheckpointError(f"{what}: restoring {prefix} failed: {exc}") from exc
    return counts

