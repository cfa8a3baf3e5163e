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


def run_two_workers(mode, out_dir, result_prefix, *args, timeout=300):
    """Runs multiworker_job.py ``mode`` as two MultiWorkerMirrored workers on localhost."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                   TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multiworker_job.py"), mode, str(out_dir),
             f"{result_prefix}{i}.npz", *map(str, args)], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=timeout)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]


@pytest.mark.e2e
def test_two_worker_multiworker_mirrored(tmp_path):
    """Also runs 3 steps per tf.function call (runtime.steps_per_execution) across workers."""
    run_two_workers("train", tmp_path / "run", tmp_path / "w")
    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(w0.files) > 0
    for k in w0.files:  # synchronous all-reduce: both workers hold the same weights
        np.testing.assert_allclose(w0[k], w1[k], rtol=1e-6, atol=1e-7)
    h = json.load(open(str(tmp_path / "w0.npz") + ".json"))
    assert h["completed"] and len(h["history"]) == 2 and np.isfinite(h["history"][-1]["loss"])
    # Only the chief (worker 0) writes the real checkpoints and artifacts.
    assert os.path.exists(tmp_path / "run" / "model.keras")
    assert os.listdir(tmp_path / "run" / "checkpoints")


@pytest.mark.e2e
def test_cross_replica_negatives_equal_one_replica_on_the_global_batch(tmp_path):
    """pretrain.cross_replica_negatives on: two workers' loss terms and weights after two steps
    equal one replica's on the concatenated batch; off: the first step's in-batch loss is the
    mean of the per-half losses (today's per-replica negatives)."""
    import tensorflow as tf

    sys.path.insert(0, HERE)
    from multiworker_job import _shard, global_batch, negatives_config, run_steps

    run_two_workers("negatives", tmp_path, tmp_path / "w")
    got = json.load(open(str(tmp_path / "w0.npz") + ".json"))
    assert got == json.load(open(str(tmp_path / "w1.npz") + ".json"))
    batch, default = global_batch(), tf.distribute.get_strategy()
    saved = np.load(str(tmp_path / "w0.npz") + ".cross1.npz")
    arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    init, after = arrays[:len(arrays) // 2], arrays[len(arrays) // 2:]
    terms, _, ref_after, _ = run_steps(negatives_config(True), default,
                                       lambda ctx: _shard(batch, ctx), steps=2, init_weights=init)
    for key in ("loss_inbatch", "loss_simcse"):
        np.testing.assert_allclose(got["cross=True"][key], terms[key], rtol=1e-5, err_msg=key)
    for a, b in zip(after, ref_after):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # Off: per-replica in-batch negatives (B/2 candidates), as before the option existed.
    half = len(batch["lon_lat"]) // 2
    per_half = [run_steps(negatives_config(False), default,
                          lambda ctx, lo=lo: {k: tf.constant(v[lo:lo + half]) for k, v in batch.items()},
                          steps=1, init_weights=init)[0] for lo in (0, half)]
    for key in ("loss_inbatch", "loss_simcse"):
        np.testing.assert_allclose(got["cross=False"][key][0],
                                   np.mean([t[key][0] for t in per_half]), rtol=1e-5, err_msg=key)
    assert got["cross=False"]["loss_inbatch"][0] < terms["loss_inbatch"][0]  # fewer negatives
