"""Preemption of `csp-tf pretrain` from outside, as Kubernetes or a spot VM does it.

SIGTERM: the process saves a checkpoint at the next step boundary, says so on one line and
exits with 75 (``PREEMPTED_EXIT_CODE``); re-running the same command ends with exactly the
weights of an uninterrupted run. SIGKILL at a random moment while a checkpoint is written every
step: the newest checkpoint the state file names is complete (every tensor reads, CRC-checked)
and the re-run again ends with the uninterrupted run's weights.
"""

import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import csp_cli as cli
from csp_tf.data.ingest import run_ingest
from csp_tf.data.world import generate_world
from csp_tf.preemption import PREEMPTED_EXIT_CODE
from csp_tf.train.checkpoint_check import read_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# ~7 steps per epoch on the tiny world; enough epochs that a signal sent after the first
# epoch's checkpoint lands mid-run.
TINY = ["--set", "location_encoder.hidden_dim=16", "--set", "location_encoder.num_filts=8",
        "--set", "location_encoder.position.frequency_num=4", "--set", "pretrain.batch_size=128",
        "--set", "runtime.progress=false", "--set", "runtime.jit_compile=off",
        "--epochs", "12"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("preempt")
    world = generate_world(str(base / "world"), "tiny", seed=7, feature_dim=8)
    run_ingest(world["manifest"], str(base / "data"), feature_dim=8,
               class_names=world["class_names"], num_shards=2, in_process=True)
    return str(base / "data")


@pytest.fixture(scope="module")
def uninterrupted(data_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("whole") / "pre")
    assert cli.main(["pretrain", "--data-root", data_root, "--out", out] + TINY) == 0
    return _weights(out)


def _weights(stage_dir):
    import csp_tf.models  # noqa: F401 - registers CSPModel

    model = keras.saving.load_model(os.path.join(stage_dir, "model.keras"))
    return [v.numpy() for v in model.location_encoder.weights]


def _start(data_root, out, extra=()):
    """`csp-tf pretrain` in a child process, once its first checkpoint is on disk."""
    log = open(out + ".stderr", "w")
    child = subprocess.Popen(
        [sys.executable, "-m", "csp_cli", "pretrain", "--data-root", data_root, "--out", out]
        + TINY + list(extra), cwd=REPO, stdout=subprocess.DEVNULL, stderr=log,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    deadline = time.time() + 180
    while tf.train.latest_checkpoint(os.path.join(out, "checkpoints")) is None:
        assert child.poll() is None, open(out + ".stderr").read()
        assert time.time() < deadline, "no checkpoint within 180 s"
        time.sleep(0.02)
    return child


def _assert_same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_sigterm_saves_a_checkpoint_exits_75_and_the_rerun_matches(data_root, uninterrupted,
                                                                   tmp_path):
    out = str(tmp_path / "pre")
    child = _start(data_root, out)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=120) == PREEMPTED_EXIT_CODE, open(out + ".stderr").read()
    last = open(out + ".stderr").read().strip().splitlines()[-1]
    assert last.startswith("csp-tf pretrain: preempted: pretrain: stopped by SIGTERM at epoch ")
    assert "Re-run the same command" in last
    prefix = tf.train.latest_checkpoint(os.path.join(out, "checkpoints"))
    assert f"checkpoint {prefix} holds step " in last  # the checkpoint it saved is the newest
    read_checkpoint(prefix, "test")
    assert os.path.exists(os.path.join(out, "history.partial.json"))
    assert not os.path.exists(os.path.join(out, "model.keras"))
    assert cli.main(["pretrain", "--data-root", data_root, "--out", out] + TINY) == 0
    _assert_same(_weights(out), uninterrupted)


def test_sigkill_while_checkpointing_keeps_a_loadable_checkpoint(data_root, uninterrupted,
                                                                 tmp_path):
    out = str(tmp_path / "pre")
    child = _start(data_root, out, ["--set", "runtime.checkpoint_every_steps=1"])
    time.sleep(random.uniform(0.0, 1.5))  # a save every step: most moments are mid-save
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    prefix = tf.train.latest_checkpoint(os.path.join(out, "checkpoints"))
    read_checkpoint(prefix, "test")  # complete: every tensor reads, CRC-checked
    assert cli.main(["pretrain", "--data-root", data_root, "--out", out] + TINY) == 0
    _assert_same(_weights(out), uninterrupted)
