"""Fault injection on the serving stack: 32 concurrent clients keep querying while the served
version is swapped, a broken version is pushed, and a good one follows → 0 failed requests,
and every answer is exactly the answer of the version that says it served it."""

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest
import tensorflow as tf

from csp_tf import warmup
from serving import contract
from serving.client import CSPServingClient
from serving.dev_server import DevServer
from serving.standin_model import export_standin

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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


# ----- overload -------------------------------------------------------------------------------
def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def _features_request(rows: int, feature_dim: int, signature: str = contract.PREDICT_FEATURES):
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = contract.MODEL_NAME
    request.model_spec.signature_name = signature
    rng = np.random.default_rng(rows)
    lon_lat = np.stack([rng.uniform(-170, 170, rows), rng.uniform(-80, 80, rows)], 1)
    request.inputs[contract.LON_LAT].CopyFrom(tf.make_tensor_proto(lon_lat.astype(np.float32)))
    if signature == contract.PREDICT_FEATURES:
        request.inputs[contract.IMAGE_FEATURES].CopyFrom(tf.make_tensor_proto(
            rng.normal(size=(rows, feature_dim)).astype(np.float32)))
    return request


@pytest.mark.e2e
def test_a_burst_beyond_the_queue_is_refused_quickly_with_bounded_memory(tmp_path):
    """`serve-dev` (a real process on 127.0.0.1) admits 4 RPCs at once; a burst of 600 requests
    of 240 KiB each (141 MiB) from tensorflow-serving-api's stubs gets RESOURCE_EXHAUSTED or
    UNAVAILABLE for what it cannot hold, within the deadline, while the server's peak memory
    grows by far less than the burst; requests over the size limits are INVALID_ARGUMENT
    naming the limit; and the server answers normally afterwards."""
    import socket

    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    feature_dim, limit = 1024, 256 << 10
    base = str(tmp_path / "csp")
    export_standin(base, version=1, feature_dim=feature_dim, with_warmup=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "serving", "serve-dev", "--model-base-path", base, "--port",
         str(port), "--max-workers", "2", "--max-concurrent-rpcs", "4", "--max-request-bytes",
         str(limit), "--no-warmup"], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}",
                                    options=[("grpc.max_send_message_length", -1)])
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        burst = _features_request(60, feature_dim)
        assert burst.ByteSize() < limit
        deadline = time.monotonic() + 120
        while True:  # the server is up once it answers
            try:
                stub.Predict(burst, timeout=5)
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
                time.sleep(0.2)
        for _ in range(5):  # the steady state of one request at a time
            stub.Predict(burst, timeout=30)
        before = _peak_rss_kib(server.pid)

        calls = [stub.Predict.future(burst, timeout=60) for _ in range(600)]
        codes = {}
        for call in calls:
            try:
                call.result()
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            codes[code] = codes.get(code, 0) + 1
        grown_mib = (_peak_rss_kib(server.pid) - before) / 1024
        refused = codes.get(grpc.StatusCode.RESOURCE_EXHAUSTED, 0) + codes.get(
            grpc.StatusCode.UNAVAILABLE, 0)
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED,
                              grpc.StatusCode.UNAVAILABLE}, codes  # no deadline ran out
        assert refused > 0 and codes.get(grpc.StatusCode.OK, 0) > 0, codes
        assert grown_mib < 48, (grown_mib, codes)  # the burst is 141 MiB

        def status(request):
            try:
                stub.Predict(request, timeout=30)
            except grpc.RpcError as exc:
                return exc.code(), exc.details()
            return grpc.StatusCode.OK, ""

        code, details = status(_features_request(100, feature_dim))  # 400 KiB: over the limit
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert f"maximum request size of {limit} bytes" in details, details
        code, details = status(_features_request(129, 0, contract.LOCATION_PRIOR))  # 129 rows
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert "maximum input batch size 128" in details, details
        code, details = status(_features_request(200, feature_dim))  # 800 KiB: never read
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, (code, details)
        assert str(2 * limit) in details, details

        answer = stub.Predict(_features_request(3, feature_dim), timeout=30)  # still serving
        assert tf.make_ndarray(answer.outputs[contract.PROBABILITIES]).shape == (3, 5)
        assert server.poll() is None
    finally:
        channel.close()
        server.terminate()
        server.wait(30)
