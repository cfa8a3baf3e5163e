"""The client against a running server: every signature, compared with the in-process model."""

import time
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from csp_tf import warmup
from serving import contract
from serving.client import CSPServingClient, ServingError

ATOL = 1e-5
LON_LAT = np.array([[2.35, 48.86], [-122.4, 37.8], [151.2, -33.9], [0.0, 0.0]], np.float32)
FEATURES = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)


def _reference(model, signature: str, **inputs) -> dict[str, np.ndarray]:
    outputs = model.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def test_status_reports_version_1_available(client):
    assert client.status() == [{"version": 1, "state": "AVAILABLE", "error_code": "OK",
                                "error_message": ""}]


def test_metadata_lists_the_contract_signatures(client):
    meta = client.metadata()
    assert meta["model"] == "csp" and meta["version"] == 1
    assert set(meta["signatures"]) == set(contract.SIGNATURES)
    for name, sig in meta["signatures"].items():
        assert set(sig["inputs"]) == set(contract.SIGNATURE_INPUTS[name]), name
        assert set(sig["outputs"]) == set(contract.SIGNATURE_OUTPUTS[name]), name
    prior = meta["signatures"][contract.LOCATION_PRIOR]
    assert prior["inputs"][contract.LON_LAT] == {"dtype": "DT_FLOAT", "shape": [-1, 2]}
    assert prior["outputs"][contract.PROBABILITIES]["shape"] == [-1, 5]
    classes = meta["signatures"][contract.PREDICT_FEATURES]["outputs"][contract.TOP_K_CLASSES]
    assert classes["dtype"] == "DT_INT32"


def test_location_prior_matches_in_process(client, standin_model):
    got = client.location_prior(LON_LAT)
    want = _reference(standin_model, contract.LOCATION_PRIOR, lon_lat=LON_LAT)
    np.testing.assert_allclose(got, want[contract.PROBABILITIES], atol=ATOL)
    assert got.shape == (4, 5) and client.last_version == 1


def test_location_embedding_matches_in_process(client, standin_model):
    got = client.location_embedding(LON_LAT)
    want = _reference(standin_model, contract.LOCATION_EMBEDDING, lon_lat=LON_LAT)
    np.testing.assert_allclose(got, want[contract.EMBEDDING], atol=ATOL)


def test_single_pair_is_one_row(client):
    assert client.location_embedding((2.35, 48.86)).shape == (1, 4)


def test_classify_matches_in_process(client, standin_model):
    got = client.classify(FEATURES, LON_LAT)
    want = _reference(standin_model, contract.PREDICT_FEATURES, image_features=FEATURES,
                      lon_lat=LON_LAT)
    assert set(got) == set(contract.CLASSIFIER_OUTPUTS)
    for key in contract.CLASSIFIER_OUTPUTS:
        np.testing.assert_allclose(got[key], want[key], atol=ATOL, err_msg=key)
    assert got[contract.TOP_K_CLASSES].dtype == np.int32


def test_classify_examples_matches_in_process_and_falls_back_without_location(
        client, standin_model):
    coords = LON_LAT.copy()
    coords[1] = np.nan  # no location: the image classifier alone (docs/reference.md §9)
    examples = warmup.serialize_examples(FEATURES, coords)
    got = client.classify_examples(examples)
    want = _reference(standin_model, contract.SERVING_DEFAULT,
                      examples=np.array(examples, dtype=object))
    for key in contract.CLASSIFIER_OUTPUTS:
        np.testing.assert_allclose(got[key], want[key], atol=ATOL, err_msg=key)
    np.testing.assert_allclose(got[contract.PROBABILITIES][1],
                               got[contract.IMAGE_PROBABILITIES][1], atol=ATOL)
    features_path = client.classify(FEATURES[[0]], LON_LAT[[0]])
    np.testing.assert_allclose(got[contract.PROBABILITIES][0],
                               features_path[contract.PROBABILITIES][0], atol=ATOL)


def test_generic_predict_returns_every_output(client):
    out = client.predict(contract.PREDICT_FEATURES,
                         {contract.IMAGE_FEATURES: FEATURES, contract.LON_LAT: LON_LAT})
    assert set(out) == set(contract.CLASSIFIER_OUTPUTS)
    assert out[contract.TOP_K_SCORES].shape == (4, 3)


def test_pinned_version_is_served(server):
    with CSPServingClient(server.address, version=1) as pinned:
        pinned.location_prior(LON_LAT)
        assert pinned.last_version == 1
        assert pinned.status()[0]["version"] == 1


def test_warmup_file_replays_against_the_server(server, stubs, standin_versions, standin_model):
    logs = warmup.read_warmup_requests(standin_versions[1])
    assert len(logs) == 8 and all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    assert {log.predict_log.request.model_spec.signature_name for log in logs} == set(
        contract.PREDICT_SIGNATURES)
    prediction, _ = stubs
    for log in logs:
        request = log.predict_log.request
        response = prediction.Predict(request, timeout=10)
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        want = _reference(standin_model, request.model_spec.signature_name, **inputs)
        for key, proto in response.outputs.items():
            np.testing.assert_allclose(tf.make_ndarray(proto), want[key], atol=ATOL)


class _FlakyModelService(model_service_pb2_grpc.ModelServiceServicer):
    """A real gRPC server whose first ``failures`` GetModelStatus calls answer UNAVAILABLE
    (a model server restarting), then version 1 AVAILABLE, each after ``delay_s``; ``calls``
    counts the attempts."""

    def __init__(self, failures: int, code=grpc.StatusCode.UNAVAILABLE, delay_s: float = 0.0):
        self.failures, self.code, self.delay_s, self.calls = failures, code, delay_s, 0

    def GetModelStatus(self, request, context):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.calls <= self.failures:
            context.abort(self.code, f"restarting (call {self.calls})")
        status = get_model_status_pb2.ModelVersionStatus(
            version=1, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        return get_model_status_pb2.GetModelStatusResponse(model_version_status=[status])


@pytest.fixture
def flaky():
    def start(failures: int, code=grpc.StatusCode.UNAVAILABLE, delay_s: float = 0.0):
        service = _FlakyModelService(failures, code, delay_s)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return service, f"127.0.0.1:{port}"

    servers = []
    yield start
    for server in servers:
        server.stop(None)


@pytest.mark.parametrize("retries, failures, ok", [(2, 2, True), (1, 2, False), (0, 1, False),
                                                   (4, 4, True)])
def test_unavailable_is_retried_by_the_channel(flaky, retries, failures, ok):
    service, address = flaky(failures)
    with CSPServingClient(address, retries=retries, backoff_s=0.01, timeout_s=10) as client:
        if ok:
            assert client.status()[0]["state"] == "AVAILABLE"
        else:
            with pytest.raises(ServingError, match="UNAVAILABLE.*restarting") as err:
                client.status()
            assert err.value.code == grpc.StatusCode.UNAVAILABLE
    assert service.calls == min(failures, retries) + 1


def test_other_errors_are_not_retried(flaky):
    service, address = flaky(1, grpc.StatusCode.INTERNAL)
    with CSPServingClient(address, retries=3, backoff_s=0.01) as client:
        with pytest.raises(ServingError, match="INTERNAL"):
            client.status()
    assert service.calls == 1


def test_unavailable_is_retried_then_reported(unused_port):
    with CSPServingClient(f"127.0.0.1:{unused_port()}", retries=2, backoff_s=0.01,
                          timeout_s=2.0) as dead:
        with pytest.raises(ServingError, match="after up to 3 attempts: UNAVAILABLE") as err:
            dead.status()
    assert err.value.code.name == "UNAVAILABLE"


def test_deadline_is_not_retried(flaky):
    # A server slower than the deadline, not a 1 µs deadline: gRPC's deadline timer is coarse
    # enough that a local server sometimes answered a 1 µs call in time (a CI flake).
    service, address = flaky(0, delay_s=2.0)
    with CSPServingClient(address, retries=3, backoff_s=0.01, timeout_s=0.2) as client:
        with pytest.raises(ServingError, match="DEADLINE_EXCEEDED") as err:
            client.status()
    assert "attempts" not in str(err.value) and err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert service.calls == 1

