"""Features of the DEVELOPMENT server itself (always the dev server, never TF Serving)."""

import logging
import os
import shutil
import signal
import threading
import time

import grpc
import numpy as np
import pytest
from tensorflow_serving.apis import (inference_pb2, model_management_pb2,
                                     model_service_pb2_grpc, prediction_service_pb2_grpc)

from serving import cli
from serving.client import CSPServingClient, ServingError
from serving.dev_server import DevServer

LON_LAT = np.array([[2.35, 48.86]], np.float32)


@pytest.fixture
def base_path(tmp_path, standin_versions, push):
    base = str(tmp_path / "csp")
    os.makedirs(base)
    push(standin_versions[1], base, 1)
    return base


def test_half_written_and_staging_dirs_are_ignored(base_path, standin_versions):
    half = os.path.join(base_path, "3")
    shutil.copytree(os.path.join(standin_versions[2], "variables"),
                    os.path.join(half, "variables"))  # no saved_model.pb yet
    shutil.copytree(standin_versions[2], os.path.join(base_path, ".staging-4"))
    os.makedirs(os.path.join(base_path, "notaversion"))
    with DevServer(base_path, poll_interval_s=0.1) as server:
        time.sleep(0.4)  # a few polls
        with CSPServingClient(server.address) as client:
            assert [s["version"] for s in client.status()] == [1]
            # Completing the directory makes it a version; it is loaded and served.
            shutil.copy(os.path.join(standin_versions[2], "saved_model.pb"), half)
            shutil.copytree(os.path.join(standin_versions[2], "assets.extra"),
                            os.path.join(half, "assets.extra"))
            assert client.wait_until_available(version=3, timeout_s=30) == 3
            client.location_prior(LON_LAT)
            assert client.last_version == 3


def test_broken_version_keeps_the_previous_one_serving(base_path):
    with DevServer(base_path, poll_interval_s=0.1) as server, \
            CSPServingClient(server.address) as client:
        broken = os.path.join(base_path, "2")
        os.makedirs(broken)
        with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
            f.write(b"not a SavedModel")
        for _ in range(100):
            states = {s["version"]: s for s in client.status()}
            if 2 in states and states[2]["state"] == "END":
                break
            time.sleep(0.05)
        assert states[2]["error_code"] != "OK" and "failed" in states[2]["error_message"]
        assert states[1]["state"] == "AVAILABLE"
        client.location_prior(LON_LAT)
        assert client.last_version == 1


def test_version_labels_route_to_loaded_versions(base_path, standin_versions, push):
    push(standin_versions[2], base_path, 2)
    with DevServer(base_path, num_versions=2,
                   version_labels={"stable": 1, "canary": 2, "gone": 9}) as server:
        for label, version in (("stable", 1), ("canary", 2)):
            with CSPServingClient(server.address, version_label=label) as client:
                client.location_embedding(LON_LAT)
                assert client.last_version == version
        with CSPServingClient(server.address, version_label="gone") as client:
            with pytest.raises(ServingError, match=r"NOT_FOUND.*Specific\(csp, 9\)"):
                client.location_prior(LON_LAT)
        with CSPServingClient(server.address) as client:
            client.location_prior(LON_LAT)
            assert client.last_version == 2
            assert [s["version"] for s in client.status()] == [2, 1]


def test_unimplemented_rpcs_say_so(base_path):
    with DevServer(base_path) as server, grpc.insecure_channel(server.address) as channel:
        prediction = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        models = model_service_pb2_grpc.ModelServiceStub(channel)
        for rpc, request in (
                (prediction.MultiInference, inference_pb2.MultiInferenceRequest()),
                (models.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest())):
            with pytest.raises(grpc.RpcError) as err:
                rpc(request, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "DEVELOPMENT server" in err.value.details()


def test_stop_is_clean_and_releases_the_port(base_path):
    server = DevServer(base_path, poll_interval_s=0.1)
    port = server.start()
    with CSPServingClient(server.address, retries=0, timeout_s=2) as client:
        client.location_prior(LON_LAT)
        server.stop(grace=1)
        with pytest.raises(ServingError, match="UNAVAILABLE"):
            client.location_prior(LON_LAT)
    server.stop()  # idempotent
    again = DevServer(base_path, port=port)
    assert again.start() == port
    again.stop()


def test_sigterm_stops_serve_dev(base_path, unused_port, caplog):
    """``serve-dev`` (CLI handler → DevServer.serve_forever) in this process's main thread; a
    helper thread sends SIGTERM once the model answers."""
    port = unused_port()
    answered = []

    def query_then_sigterm():
        with CSPServingClient(f"127.0.0.1:{port}", retries=0, timeout_s=2) as client:
            try:
                client.wait_until_available(timeout_s=60)
                answered.append(client.location_prior(LON_LAT).shape)
            finally:
                os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    helper = threading.Thread(target=query_then_sigterm)
    helper.start()
    with caplog.at_level(logging.INFO, logger="serving.dev_server"):
        code = cli.main(["serve-dev", "--model-base-path", base_path, "--port", str(port),
                         "--poll-interval", "0.2"])
    helper.join(10)
    assert code == 0 and answered == [(1, 5)]
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored
    log = caplog.text
    assert "DEVELOPMENT server" in log and "SIGTERM received" in log and "stopped" in log
    with CSPServingClient(f"127.0.0.1:{port}", retries=0, timeout_s=2) as client:
        with pytest.raises(ServingError, match="UNAVAILABLE"):
            client.status()
