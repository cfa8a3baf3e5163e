"""DataRoot and stage_inputs: shapes from metadata.json (read once per stage), conflicts
reported, one label rule for every labeled input, a shard corrupted in place named."""

import glob
import json
import os
import shutil

import numpy as np
import pytest

from csp_tf.configs import ConfigError, get_preset
from csp_tf.data import reader
from csp_tf.data.errors import DataError
from csp_tf.data.ingest import run_ingest
from csp_tf.data.world import generate_world
from csp_tf.train import pretrain
from csp_tf.train.data_root import DataRoot, stage_inputs

TINY = {"location_encoder.hidden_dim": 16, "location_encoder.num_filts": 8,
        "pretrain.epochs": 2, "pretrain.batch_size": 128, "finetune.epochs": 1,
        "finetune.batch_size": 128, "finetune.min_steps": 0, "finetune.image_classifier_epochs": 1,
        "finetune.image_classifier_steps": 5, "runtime.progress": False}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("dr")
    world = generate_world(str(base / "world"), "tiny", seed=5, feature_dim=8)
    run_ingest(world["manifest"], str(base / "data"), feature_dim=8,
               class_names=world["class_names"], num_shards=2, in_process=True)
    return str(base / "data")


def _cfg():
    return get_preset("demo").override(TINY)


def test_shapes_come_from_metadata(root):
    data = DataRoot.open(root)
    cfg = data.configure(_cfg())
    assert cfg.data.feature_dim == 8 and cfg.data.num_classes == len(data.class_names) > 1
    assert cfg.data.data_root == root and data.feature_stats[0].shape == (8,)
    inputs = stage_inputs(cfg.override({"finetune.label_ratio": 0.5,
                                        "finetune.image_classifier_labels": "all"}), data, "finetune")
    assert 0 < inputs["stage_input"].num_examples < inputs["image_input"].num_examples
    assert sum(data.rows(s) for s in ("pretrain", "train")) == \
        stage_inputs(cfg, data, "pretrain")["stage_input"].num_examples


def test_conflicting_shape_is_named(root):
    with pytest.raises(ConfigError, match="data.num_classes=3"):
        DataRoot.open(root).configure(_cfg().override({"data.num_classes": 3}))


def test_metadata_is_read_once_per_stage(root, tmp_path, monkeypatch):
    """Each CLI stage (pretrain over two epochs of streamed shards; finetune with the full-batch
    probe and the calibrated fusion, which read train and val) parses metadata.json once."""
    from csp_cli import main

    reads = []
    real = reader.read_metadata
    monkeypatch.setattr(reader, "read_metadata", lambda r: reads.append(r) or real(r))
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    assert main(["pretrain", "--data-root", root, "--out", str(tmp_path / "pre")] + sets) == 0
    assert reads == [root]
    reads.clear()
    assert main(["finetune", "--data-root", root, "--out", str(tmp_path / "ft"),
                 "--base-model", str(tmp_path / "pre"), "--label-ratio", "0.5",
                 "--set", "finetune.image_classifier_solver=fullbatch",
                 "--set", "finetune.fusion=calibrated"] + sets) == 0
    assert reads == [root]


@pytest.fixture
def root_with_unlabeled_train_row(root, tmp_path):
    """A copy of ``root`` whose train split also holds an unlabeled row (label -1), as a data
    root written by another tool (or an older ingest) may."""
    import tensorflow as tf

    from csp_tf.data.schema import encode_example

    copy = str(tmp_path / "data")
    shutil.copytree(root, copy)
    rel = os.path.join("train", "part-unlabeled.tfrecord.gz")
    with tf.io.TFRecordWriter(os.path.join(copy, rel), options="GZIP") as w:
        w.write(encode_example({"id": "zz-unlabeled", "lon": 1.0, "lat": 2.0,
                                "image_features": np.ones(8, np.float32)}))
    meta_path = os.path.join(copy, "metadata.json")
    meta = json.load(open(meta_path))
    train = meta["splits"]["train"]
    train["files"].append(rel)
    train["bytes"].append(os.path.getsize(os.path.join(copy, rel)))
    train["rows"] += 1
    json.dump(meta, open(meta_path, "w"))
    return copy


def _rows(stage_input, key="label"):
    return np.concatenate([b[key].numpy() for b in stage_input.dataset_fn(0)])


def test_one_label_rule_for_every_labeled_input(root_with_unlabeled_train_row):
    """Unlabeled train rows are in the label-free pre-training stream and in no labeled input
    (the data-root path used to hand them to the image probe and the balanced sampler)."""
    data = DataRoot.open(root_with_unlabeled_train_row)
    cfg = data.configure(_cfg()).override({"finetune.image_classifier_labels": "all",
                                           "finetune.image_classifier_solver": "fullbatch"})
    labeled_rows = data.rows("train") - 1
    pre = stage_inputs(cfg, data, "pretrain")["stage_input"]
    assert b"zz-unlabeled" in set(_rows(pre, "id"))
    ft = stage_inputs(cfg, data, "finetune")
    img = _rows(ft["image_input"])
    assert len(img) == labeled_rows and img.min() >= 0
    assert len(ft["image_arrays"]["label"]) == labeled_rows
    assert _rows(ft["stage_input"]).min() >= 0
    balanced = stage_inputs(cfg.override({"pretrain.sampler": "balanced"}), data, "pretrain")
    assert _rows(balanced["stage_input"]).min() >= 0


def test_shard_corrupted_in_place_names_the_file(root, tmp_path):
    bad_root = str(tmp_path / "data")
    shutil.copytree(root, bad_root)
    shard = sorted(glob.glob(os.path.join(bad_root, "pretrain", "*")))[0]
    data = bytearray(open(shard, "rb").read())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)  # same size, garbage inside the gzip stream
    open(shard, "wb").write(bytes(data))
    source = DataRoot.open(bad_root)
    cfg = source.configure(_cfg())
    with pytest.raises(DataError, match=os.path.basename(shard)):
        pretrain(cfg, output_dir=str(tmp_path / "out"), **stage_inputs(cfg, source, "pretrain"))
