"""Stage inputs from an ingested data root: shapes resolved from metadata, conflicts reported,
a shard corrupted in place named in the error."""

import glob
import os
import shutil

import pytest

from csp_tf.configs import ConfigError, get_preset
from csp_tf.data.errors import DataError
from csp_tf.data.ingest import run_ingest
from csp_tf.data.world import generate_world
from csp_tf.train import pretrain
from csp_tf.train.data_root import finetune_inputs, pretrain_input, resolve_data_shapes


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("dr")
    world = generate_world(str(base / "world"), "tiny", seed=5, feature_dim=8)
    run_ingest(world["manifest"], str(base / "data"), feature_dim=8,
               class_names=world["class_names"], num_shards=2, in_process=True)
    return str(base / "data")


def _cfg():
    cfg = get_preset("demo")
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 16, 8
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 1, 128
    cfg.runtime.progress = False
    return cfg


def test_shapes_come_from_metadata(root):
    cfg = resolve_data_shapes(_cfg(), root)
    assert cfg.data.feature_dim == 8 and cfg.data.num_classes > 1
    loc, img = finetune_inputs(cfg.override({"finetune.label_ratio": 0.5}), root)
    assert 0 < loc.num_examples <= img.num_examples or cfg.finetune.image_classifier_labels == "fewshot"


def test_conflicting_shape_is_named(root):
    with pytest.raises(ConfigError, match="data.num_classes=3"):
        resolve_data_shapes(_cfg().override({"data.num_classes": 3}), root)


def test_shard_corrupted_in_place_names_the_file(root, tmp_path):
    bad_root = str(tmp_path / "data")
    shutil.copytree(root, bad_root)
    shard = sorted(glob.glob(os.path.join(bad_root, "pretrain", "*")))[0]
    data = bytearray(open(shard, "rb").read())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)  # same size, garbage inside the gzip stream
    open(shard, "wb").write(bytes(data))
    cfg = resolve_data_shapes(_cfg(), bad_root)
    with pytest.raises(DataError, match=os.path.basename(shard)):
        pretrain(cfg, pretrain_input(cfg, bad_root), str(tmp_path / "out"))
