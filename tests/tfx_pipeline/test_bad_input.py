"""Bad input stops the run at the right component, with a message a user can act on, and
nothing is trained or pushed."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from pipeline_test_helpers import TEST_BEAM_ARGS, tiny_config, version_dirs

pytestmark = pytest.mark.e2e

TRAINERS = ("pretrain_trainer", "finetune_trainer")


def _run_expecting_failure(tmp_path, data_root):
    from tfx_pipeline.local_runner import PipelineRunError, run_local, summarize_run

    root, serving = str(tmp_path / "root"), str(tmp_path / "serving")
    with pytest.raises(PipelineRunError) as info:
        run_local(root, data_root, serving, tiny_config(), beam_args=TEST_BEAM_ARGS, min_top1=0.0)
    summary = summarize_run(os.path.join(root, "metadata.sqlite"), "csp-tf")
    assert version_dirs(serving) == []
    assert not any(node in summary["components"] for node in TRAINERS), summary["components"]
    return str(info.value), summary


def test_corrupt_shard_stops_at_example_gen_naming_the_file(data_root_copy, tmp_path):
    shard = sorted(glob.glob(os.path.join(data_root_copy, "train", "*.tfrecord.gz")))[0]
    data = bytearray(open(shard, "rb").read())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)  # same size, so only reading it can tell
    open(shard, "wb").write(bytes(data))

    message, summary = _run_expecting_failure(tmp_path, data_root_copy)
    assert "component 'ImportExampleGen' failed" in message
    assert os.path.basename(shard) in message and "corrupt" in message
    assert summary["components"]["ImportExampleGen"]["state"] == "FAILED"


def test_truncated_shard_is_caught_before_beam_runs(data_root_copy, tmp_path):
    shard = sorted(glob.glob(os.path.join(data_root_copy, "val", "*.tfrecord.gz")))[0]
    with open(shard, "r+b") as f:
        f.truncate(os.path.getsize(shard) // 2)

    message, _ = _run_expecting_failure(tmp_path, data_root_copy)
    assert "component 'ImportExampleGen' failed" in message
    assert os.path.basename(shard) in message and "re-run the ingest" in message


def _rewrite_split(data_root: str, split: str, edit) -> None:
    """Re-encodes every row of ``split`` through ``edit(record)`` and fixes metadata.json sizes,
    so the files are intact and only the *values* break the schema."""
    import tensorflow as tf

    from csp_tf.data.schema import decode_example, encode_example

    meta_path = os.path.join(data_root, "metadata.json")
    meta = json.load(open(meta_path))
    sizes = []
    for rel in meta["splits"][split]["files"]:
        path = os.path.join(data_root, rel)
        rows = [decode_example(r.numpy(), meta["feature_dim"])
                for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for row in rows:
                writer.write(encode_example(edit(row)))
        sizes.append(os.path.getsize(path))
    meta["splits"][split]["bytes"] = sizes
    json.dump(meta, open(meta_path, "w"))


def test_schema_anomaly_stops_before_training(data_root_copy, tmp_path):
    def edit(row):
        row["label"] = 99  # the data root has 8 classes: labels must be < 8
        row["region"] = "atlantis"
        row["image_features"] = np.asarray(row["image_features"], np.float32)
        return row

    _rewrite_split(data_root_copy, "val", edit)
    message, summary = _run_expecting_failure(tmp_path, data_root_copy)
    assert "component 'AnomaliesGate' failed" in message
    assert "[val]" in message and "'label'" in message and "'region'" in message
    assert "schema.pbtxt" in message  # says where to look
    assert summary["components"]["ExampleValidator"]["state"] == "COMPLETE"
    assert summary["components"]["AnomaliesGate"]["state"] == "FAILED"
