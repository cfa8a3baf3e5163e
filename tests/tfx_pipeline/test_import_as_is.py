"""ImportExampleGen keeps the data root's shards: the examples artifact holds the ingest's files
byte for byte, so what a Trainer reads does not depend on how a Beam job re-sharded the rows on
this run (two pipeline runs on one data root stream the same files in the same order)."""

from __future__ import annotations

import filecmp
import glob
import os

import pytest


def _run_executor(data_root: str, out: str, splits=("pretrain", "train", "val")):
    from tfx import v1 as tfx
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.types import standard_component_specs as specs
    from tfx.utils import proto_utils

    from tfx_pipeline.components.checked_import import CheckedImportExecutor

    examples = standard_artifacts.Examples()
    examples.uri = out
    config = tfx.proto.Input(splits=[tfx.proto.Input.Split(name=s, pattern=f"{s}/*.tfrecord.gz")
                                     for s in splits])
    CheckedImportExecutor().Do({}, {specs.EXAMPLES_KEY: [examples]}, {
        specs.INPUT_BASE_KEY: data_root, specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(config),
        specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(tfx.proto.Output()),
        specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE})
    return examples


def test_the_artifact_holds_the_data_roots_shards_byte_for_byte(tiny_data_root, tmp_path):
    from tfx.types import artifact_utils

    examples = _run_executor(tiny_data_root, str(tmp_path / "examples"))
    assert artifact_utils.decode_split_names(examples.split_names) == ["pretrain", "train", "val"]
    assert examples.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"
    for split in ("pretrain", "train", "val"):
        ours = sorted(glob.glob(os.path.join(tiny_data_root, split, "*.tfrecord.gz")))
        theirs = sorted(glob.glob(str(tmp_path / "examples" / f"Split-{split}" / "*")))
        assert [os.path.basename(p) for p in theirs] == [
            f"data_tfrecord-{i:05d}-of-{len(ours):05d}.gz" for i in range(len(ours))]
        assert all(filecmp.cmp(a, b, shallow=False) for a, b in zip(ours, theirs)), split


def test_a_corrupt_record_is_named_before_anything_is_copied(data_root_copy, tmp_path):
    from csp_tf.data.errors import DataError

    shard = sorted(glob.glob(os.path.join(data_root_copy, "train", "*.tfrecord.gz")))[0]
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)  # same size: only reading tells
    open(shard, "wb").write(bytes(data))
    with pytest.raises(DataError, match=f"{os.path.basename(shard)} is corrupt"):
        _run_executor(data_root_copy, str(tmp_path / "examples"))
    assert not glob.glob(str(tmp_path / "examples" / "*" / "*"))
