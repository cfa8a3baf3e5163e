"""runtime.steps_per_execution: several steps per tf.function call give bit-for-bit
the weights, per-step terms and checkpoints of one step per call, and resume exactly."""

import json
import os

import numpy as np
import pytest

from csp_tf.train import finetune, from_arrays, pretrain


def _weights(model):
    return [v.numpy() for v in model.weights]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("jit", ["off", "on"])
def test_pretrain_chunks_equal_one_step_per_call(tiny_config, world, tmp_path, jit):
    tiny_config.pretrain.epochs, tiny_config.pretrain.simcse_weight = 2, 0.5
    tiny_config.runtime.jit_compile = jit
    one = pretrain(tiny_config, from_arrays(world, 60, seed=0), str(tmp_path / "one"))
    # 9 steps per epoch (the last one short): calls of 4, 4, 1 steps.
    tiny_config.runtime.steps_per_execution = 4
    four = pretrain(tiny_config, from_arrays(world, 60, seed=0), str(tmp_path / "four"))
    _assert_same(_weights(one.model), _weights(four.model))
    assert one.history == four.history


def test_finetune_chunks_equal_one_step_per_call(tiny_config, world, tmp_path):
    tiny_config.finetune.image_classifier_solver = "minibatch"
    one = finetune(tiny_config, from_arrays(world, 64, seed=1), from_arrays(world, 64, seed=2),
                   str(tmp_path / "one"))
    tiny_config.runtime.steps_per_execution = 3
    three = finetune(tiny_config, from_arrays(world, 64, seed=1), from_arrays(world, 64, seed=2),
                     str(tmp_path / "three"))
    _assert_same(_weights(one.model), _weights(three.model))


def test_resume_mid_chunk_equals_uninterrupted(tiny_config, world, tmp_path):
    """max_steps and checkpoint_every_steps that fall inside a call of 4 steps cut the call
    short, so the checkpoint lands on the same step as with one step per call."""
    full = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "full"))
    tiny_config.runtime.steps_per_execution, tiny_config.runtime.checkpoint_every_steps = 4, 3
    part = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "split"),
                    max_steps=11)
    assert not part.completed and len(part.history) == 1  # epoch 1 of 8 steps
    ckpts = {int(f.split("-")[1].split(".")[0]) for f in
             os.listdir(tmp_path / "split" / "checkpoints") if f.startswith("ckpt-")}
    assert ckpts == {9, 11}  # steps 3, 6, 8 (epoch end), 9, 11 (the stop); the last 2 kept
    resumed = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "split"))
    assert resumed.completed
    _assert_same(_weights(full.model), _weights(resumed.model))
    hist = json.load(open(tmp_path / "split" / "history.json"))
    assert [h["loss"] for h in hist][0::2] == [h["loss"] for h in full.history][0::2]


def test_steps_per_execution_is_validated(tiny_config):
    from csp_tf.configs import ConfigError
    tiny_config.runtime.steps_per_execution = 0
    with pytest.raises(ConfigError, match="steps_per_execution"):
        tiny_config.validate()
