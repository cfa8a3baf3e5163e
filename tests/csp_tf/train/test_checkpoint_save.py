"""Checkpoints are written once each (a kill mid-save never damages the checkpoint the state
file names), and a NaN/inf loss stops training at that step naming it, leaving the last good
checkpoint on disk."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.train import finetune, from_arrays, pretrain
from csp_tf.train.checkpoint_check import read_checkpoint
from csp_tf.train.loop import NonFiniteLossError


@pytest.fixture
def saved_paths(monkeypatch):
    """Every prefix a CheckpointManager saves, in order."""
    paths = []
    real = tf.train.CheckpointManager.save

    def spy(self, *args, **kwargs):
        paths.append(real(self, *args, **kwargs))
        return paths[-1]

    monkeypatch.setattr(tf.train.CheckpointManager, "save", spy)
    return paths


def test_no_checkpoint_is_written_twice(tiny_config, world, tmp_path, saved_paths):
    """A periodic save on an epoch's last step, then the epoch's own save, and the image
    classifier's steps (numbered from 0) after the fine-tuning steps used to rewrite an existing
    checkpoint in place: a kill during that rewrite breaks the checkpoint the state file names."""
    tiny_config.runtime.checkpoint_every_steps = 4  # 8 steps per epoch: every epoch end collides
    tiny_config.pretrain.epochs = 2
    pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    assert len(saved_paths) == len(set(saved_paths)), saved_paths
    numbers = [int(p.rsplit("-", 1)[1]) for p in saved_paths]
    assert numbers == sorted(numbers)  # the newest checkpoint always has the highest number
    saved_paths.clear()
    tiny_config.finetune.image_classifier_solver = "minibatch"
    finetune(tiny_config, from_arrays(world, 64, seed=1), from_arrays(world, 64, seed=2),
             str(tmp_path / "ft"), base_model_dir=str(tmp_path / "pre"))
    assert len(saved_paths) == len(set(saved_paths)), saved_paths
    # Resuming the finished stages writes nothing and restores the newest checkpoint.
    saved_paths.clear()
    pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    assert saved_paths == []


def test_nan_loss_stops_at_that_step_and_keeps_the_last_good_checkpoint(tiny_config, world,
                                                                        tmp_path):
    tiny_config.pretrain.lr = 1e30  # the first update throws the weights to ~1e30
    tiny_config.runtime.checkpoint_every_steps = 1
    out = tmp_path / "pre"
    with pytest.raises(NonFiniteLossError) as info:
        pretrain(tiny_config, from_arrays(world, 64, seed=0), str(out))
    message = str(info.value)
    assert message.startswith("pretrain: non-finite loss at epoch 1, step 2 (global step 2): ")
    assert "loss=nan" in message or "loss=inf" in message  # which loss term(s)
    last = os.path.join(str(out), "checkpoints", "ckpt-1")
    assert f"the last good checkpoint is {last}." in message
    assert tf.train.latest_checkpoint(str(out / "checkpoints")) == last
    reader = read_checkpoint(last, "test")  # every tensor readable (CRC-checked) ...
    for key in reader.get_variable_to_shape_map():
        value = reader.get_tensor(key)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), key  # ... and finite
    assert not glob.glob(str(out / "model.keras"))  # no finished-stage artifacts

