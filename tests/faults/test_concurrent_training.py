"""A second training run into the same ``--out`` (the same checkpoint directory) while the first
is running is refused naming the first; the first then finishes alone (never a mixed result)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import csp_cli as cli
from csp_tf.data.ingest import run_ingest
from csp_tf.data.world import generate_world

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--set", "location_encoder.hidden_dim=32", "--set", "location_encoder.num_filts=16",
        "--set", "pretrain.batch_size=128", "--set", "runtime.progress=false",
        "--set", "runtime.checkpoint_every_steps=1"]


@pytest.mark.e2e
def test_a_second_pretrain_into_the_same_out_is_refused_naming_the_first(tmp_path, capsys):
    world = generate_world(str(tmp_path / "world"), "tiny", seed=3, feature_dim=16)
    root, out = str(tmp_path / "data"), str(tmp_path / "pre")
    run_ingest(world["manifest"], root, feature_dim=16, class_names=world["class_names"],
               num_shards=2, in_process=True)
    args = ["pretrain", "--data-root", root, "--out", out, "--epochs", "2"] + TINY
    proc = subprocess.Popen([sys.executable, "-m", "csp_cli", *args], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock_file = str(tmp_path / ".pre.lock")
    try:
        deadline, holder = time.time() + 300, None
        while holder is None and time.time() < deadline and proc.poll() is None:
            try:
                record = json.loads(open(lock_file).read())
                holder = record if record.get("pid") == proc.pid else None
            except (OSError, ValueError):
                time.sleep(0.01)
        assert holder is not None, f"pretrain never locked {out} (exit {proc.poll()})"
        os.killpg(proc.pid, signal.SIGSTOP)
        capsys.readouterr()
        assert cli.main(args) == 2  # the second run: refused before it touches a checkpoint
        error = capsys.readouterr().err
        for part in (f"pid {proc.pid}", f"on host {holder['host']}", holder["started"],
                     "csp-tf pretrain", "--out", lock_file):
            assert part in error, (part, error)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    history = json.load(open(os.path.join(out, "history.json")))
    assert [h["epoch"] for h in history] == [1, 2]  # one run's epochs, once each
    assert not os.path.exists(lock_file)
