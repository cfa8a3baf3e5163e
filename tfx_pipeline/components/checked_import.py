"""``CheckedImportExecutor``: ImportExampleGen's executor with data-root checks and clear errors.

Before the Beam job it checks that every split pattern matches files and that each file has
the size the ingest recorded in ``metadata.json`` (``csp_tf.data.reader.check_files``: cheap,
catches truncated or rewritten shards). If the Beam job still fails (a corrupt record of the
right size), it reads the files one by one to name the damaged one. Either way the run stops at
ImportExampleGen with a ``DataError`` a user can act on, not a Beam traceback.
"""

from __future__ import annotations

import os
import re
from typing import Any, Dict, List

import tensorflow as tf
from tfx.components import ImportExampleGen
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from csp_tf.data import reader
from csp_tf.data.errors import DataError


def split_files(input_base: str, input_config_json: str) -> Dict[str, List[str]]:
    """{split: files} for the ExampleGen input config; DataError if a split matches nothing."""
    config = example_gen_pb2.Input()
    proto_utils.json_to_proto(input_config_json, config)
    out = {}
    for split in config.splits:
        files = sorted(tf.io.gfile.glob(os.path.join(input_base, split.pattern)))
        if not files:
            raise DataError(f"ImportExampleGen: split {split.name!r} matches no files at "
                            f"{os.path.join(input_base, split.pattern)}; is {input_base!r} a "
                            f"data root written by `csp-tf ingest`?")
        out[split.name] = files
    return out


class CheckedImportExecutor(import_executor.Executor):
    """ImportExampleGen executor that fails with a ``DataError`` naming the bad file."""

    def Do(self, input_dict: Dict[str, Any], output_dict: Dict[str, Any],
           exec_properties: Dict[str, Any]) -> Any:
        files = split_files(exec_properties[specs.INPUT_BASE_KEY],
                            exec_properties[specs.INPUT_CONFIG_KEY])
        all_files = [f for split in files.values() for f in split]
        reader.check_files(all_files)  # sizes vs metadata.json: a cheap first look
        try:
            return super().Do(input_dict, output_dict, exec_properties)
        except Exception as exc:  # noqa: BLE001 - diagnose, then re-raise with the cause
            try:
                reader.verify_files(all_files)
            except DataError as found:
                raise DataError(f"ImportExampleGen could not read the data root: "
                                f"{_without_op_noise(str(found))}") from exc
            raise


def _without_op_noise(message: str) -> str:
    """Drops TF's ``{{function_node ...}}`` and ``[Op:...]`` decorations from an error text."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:[^\]]*\]( name:)?", "", message)


class CheckedImportExampleGen(ImportExampleGen):
    """ImportExampleGen running ``CheckedImportExecutor`` (same spec, inputs and outputs)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(CheckedImportExecutor)
