"""``AtomicPusher``: TFX's Pusher whose filesystem push is atomic, space-checked and locked.

TFX 1.16's Pusher copies the model file by file straight into ``<base>/<version>/`` (the
``saved_model.pb`` last). A full disk mid-copy leaves that directory with its variables and a
truncated ``saved_model.pb`` (seen on a full tmpfs): an integer-named directory that a server
polling the base path tries to load. Two pipelines pushing into one base path interleave freely.
This executor pushes local (and mounted) base paths with ``csp_tf.export.push_saved_model``:
a free-space check naming the bytes needed and free, a copy under a temporary non-integer name,
fsync, one rename, and the serving base path's writer lock (``csp_tf.locks``). Blessing checks,
the ``pushed_model`` artifact and its properties are the stock executor's; other destinations
(``gs://``, where a rename is a copy anyway) use the stock push.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List

from tfx.components import Pusher
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils, proto_utils


class AtomicPushExecutor(pusher_executor.Executor):
    """Pusher executor: the filesystem push goes through ``push_saved_model``."""

    def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
           exec_properties: Dict[str, Any]) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[specs.PUSH_DESTINATION_KEY], destination)
        base = destination.filesystem.base_directory
        if destination.WhichOneof("destination") != "filesystem" or "://" in base:
            return super().Do(input_dict, output_dict, exec_properties)
        from csp_tf.export import push_saved_model

        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return None
        model_path = self.GetModelPath(input_dict)
        version = int(time.time())  # UNIX_TIMESTAMP versioning, as the stock executor
        serving_path = push_saved_model(model_path, base, version)
        io_utils.copy_dir(model_path, model_push.uri)  # the archive copy, as the stock one
        self._MarkPushed(model_push, pushed_destination=serving_path,
                         pushed_version=str(version))
        return None


class AtomicPusher(Pusher):
    """``tfx.components.Pusher`` with :class:`AtomicPushExecutor` (same spec, same outputs)."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(AtomicPushExecutor)
