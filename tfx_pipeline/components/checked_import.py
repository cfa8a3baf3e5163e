"""``CheckedImportExecutor``: ImportExampleGen's executor with data-root checks, clear errors
and the data root's own shards.

First it checks that every split pattern matches files and that each file has the size the
ingest recorded in ``metadata.json`` (``csp_tf.data.reader.check_files``: cheap, catches
truncated or rewritten shards). Then, when the input is the ingest's gzip TFRecords of
tf.Examples and no output split or format is asked for, it reads every record once
(``reader.verify_files``, naming a damaged file) and copies the shards byte for byte, in name
order, into the artifact: ImportExampleGen's Beam job would re-shard the rows differently on
every run, and a Trainer that streams its files (a pre-training pool over
``data.pretrain_in_memory_mb``) would then see other batches and train another model. The
ingest's shards are a function of the rows (docs/data.md), so two runs on one data root get
the same artifact. Other inputs go through ImportExampleGen's Beam job; if it fails, the files
are read one by one to name the damaged one. Either way the run stops at ImportExampleGen with a
``DataError`` a user can act on, not a Beam traceback.
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
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.types import artifact_utils
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
        if _copyable(files, exec_properties):
            reader.verify_files(all_files)  # every record reads, else DataError naming the file
            return _copy_shards(files, output_dict, exec_properties)
        try:
            return super().Do(input_dict, output_dict, exec_properties)
        except Exception as exc:  # noqa: BLE001 - diagnose, then re-raise with the cause
            try:
                reader.verify_files(all_files)
            except DataError as found:
                raise DataError(f"ImportExampleGen could not read the data root: "
                                f"{_without_op_noise(str(found))}") from exc
            raise


def _copyable(files: Dict[str, List[str]], exec_properties: Dict[str, Any]) -> bool:
    """True when the output is the input's splits, as gzip TFRecords of tf.Examples, and the
    input is exactly that (the ingest's ``*.tfrecord.gz``)."""
    output = example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties.get(specs.OUTPUT_CONFIG_KEY) or "{}", output)
    file_format = exec_properties.get(specs.OUTPUT_FILE_FORMAT_KEY)
    payload = exec_properties.get(specs.OUTPUT_DATA_FORMAT_KEY)
    return (not output.split_config.splits
            and file_format in (None, example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
                                example_gen_pb2.FORMAT_TFRECORDS_GZIP)
            and payload in (None, example_gen_pb2.FORMAT_TF_EXAMPLE)
            and all(f.endswith(".tfrecord.gz") for split in files.values() for f in split))


def _copy_shards(files: Dict[str, List[str]], output_dict: Dict[str, Any],
                 exec_properties: Dict[str, Any]) -> None:
    """Writes the examples artifact as ImportExampleGen would, with the input shards copied
    byte for byte (``Split-<name>/data_tfrecord-<i>-of-<n>.gz``, in input name order)."""
    input_config, output_config = example_gen_pb2.Input(), example_gen_pb2.Output()
    proto_utils.json_to_proto(exec_properties[specs.INPUT_CONFIG_KEY], input_config)
    proto_utils.json_to_proto(exec_properties.get(specs.OUTPUT_CONFIG_KEY) or "{}", output_config)
    names = example_gen_utils.generate_output_split_names(input_config, output_config)
    examples = artifact_utils.get_single_instance(output_dict[specs.EXAMPLES_KEY])
    examples.split_names = artifact_utils.encode_split_names(names)
    for name in names:
        target = artifact_utils.get_split_uri(output_dict[specs.EXAMPLES_KEY], name)
        tf.io.gfile.makedirs(target)
        shards = files[name]
        for i, path in enumerate(shards):
            tf.io.gfile.copy(path, os.path.join(
                target, f"data_tfrecord-{i:05d}-of-{len(shards):05d}.gz"), overwrite=True)
    examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)


def _without_op_noise(message: str) -> str:
    """Drops TF's ``{{function_node ...}}`` and ``[Op:...]`` decorations from an error text."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:[^\]]*\]( name:)?", "", message)


class CheckedImportExampleGen(ImportExampleGen):
    """ImportExampleGen running ``CheckedImportExecutor`` (same spec, inputs and outputs)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(CheckedImportExecutor)
