"""Fault injection on the serving stack: 32 concurrent clients keep querying while the served
version is swapped, a broken version is pushed, and a good one follows → 0 failed requests,
and every answer is exactly the answer of the version that says it served it."""

import os
import shutil
import threading
import time
import uuid

import numpy as np
import tensorflow as tf

from csp_tf import warmup
from serving import contract
from serving.client import CSPServingClient
from serving.dev_server import DevServer
from serving.standin_model import export_standin

CLIENTS = 32
LON_LAT = np.array([[2.35, 48.86], [-47.9, -15.8]], np.float32)
FEATURES = np.random.default_rng(9).normal(size=(2, 8)).astype(np.float32)


def _push(source_dir, base, version):
    staging = os.path.join(base, f".staging-{uuid.uuid4().hex[:8]}")
    shutil.copytree(source_dir, staging)
    os.rename(staging, os.path.join(base, str(version)))


def _expected(version_dir):
    model = tf.saved_model.load(version_dir)
    prior = model.signatures[contract.LOCATION_PRIOR](lon_lat=tf.constant(LON_LAT))
    labels = model.signatures[contract.CLASSIFY](
        inputs=tf.constant(warmup.serialize_examples(FEATURES, LON_LAT)))
    return prior[contract.PROBABILITIES].numpy(), [
        [c.decode() for c in row] for row in labels[contract.CLASSES].numpy()]


def test_32_clients_see_no_failure_across_a_swap_and_a_broken_push(tmp_path):
    store, base = str(tmp_path / "store"), str(tmp_path / "csp")
    os.makedirs(base)
    versions = {v: export_standin(store, version=v) for v in (1, 2, 4)}
    want = {v: _expected(d) for v, d in versions.items()}
    _push(versions[1], base, 1)

    failures, answers = [], {v: 0 for v in want}
    stop, lock = threading.Event(), threading.Lock()

    def hammer(index):
        with CSPServingClient(server.address, retries=0, timeout_s=30) as client:
            while not stop.is_set():
                try:
                    if index % 2:
                        got = client.location_prior(LON_LAT)
                        np.testing.assert_allclose(got, want[client.last_version][0], atol=1e-5)
                    else:
                        top = client.classify_rpc(warmup.serialize_examples(FEATURES, LON_LAT))
                        assert [[c for c, _ in r] for r in top] == want[client.last_version][1]
                    with lock:
                        answers[client.last_version] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is collected
                    with lock:
                        failures.append(f"client {index}: {exc!r}")

    with DevServer(base, poll_interval_s=0.1, max_workers=CLIENTS + 8) as server, \
            CSPServingClient(server.address) as admin:
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            _push(versions[2], base, 2)  # swap 1 → 2
            assert admin.wait_until_available(version=2, timeout_s=60) == 2
            broken = os.path.join(base, ".staging-broken")
            os.makedirs(os.path.join(broken, "variables"))
            with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
                f.write(b"\x08\x01garbage, not a SavedModel")
            os.rename(broken, os.path.join(base, "3"))  # broken version 3
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = {s["version"]: s for s in admin.status()}
                if states.get(3, {}).get("state") == "END":
                    break
                time.sleep(0.1)
            assert states[3]["state"] == "END" and states[3]["error_code"] != "OK"
            assert states[2]["state"] == "AVAILABLE"  # the broken push changed nothing
            time.sleep(1.0)
            _push(versions[4], base, 4)  # and a good version after the broken one
            assert admin.wait_until_available(version=4, timeout_s=60) == 4
            time.sleep(1.0)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
    assert failures == [], failures[:5]
    assert answers[1] > 0 and answers[2] > 0 and answers[4] > 0, answers
