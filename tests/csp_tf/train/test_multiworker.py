"""Two worker processes on localhost train one model with MultiWorkerMirroredStrategy."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(__file__)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.e2e
def test_two_worker_multiworker_mirrored(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multiworker_job.py"), str(tmp_path / "run"),
             str(tmp_path / f"w{i}.npz")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) > 0
    for k in w0.files:  # synchronous all-reduce: both workers hold the same weights
        np.testing.assert_allclose(w0[k], w1[k], rtol=1e-6, atol=1e-7)
    h = json.load(open(str(tmp_path / "w0.npz") + ".json"))
    assert h["completed"] and len(h["history"]) == 2 and np.isfinite(h["history"][-1]["loss"])
    # Only the chief (worker 0) writes the real checkpoints and artifacts.
    assert os.path.exists(tmp_path / "run" / "model.keras")
    assert os.listdir(tmp_path / "run" / "checkpoints")
