"""Bad requests get TF Serving's status codes and a message naming the problem; the server
keeps answering good requests afterwards."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2, predict_pb2

from serving import contract
from serving.client import CSPServingClient, ServingError

GOOD = np.array([[2.35, 48.86]], np.float32)
FEATURES = np.zeros((1, 8), np.float32)


def _request(signature=contract.LOCATION_PRIOR, model="csp", version=None, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


# Each case: request, expected code, words the message must contain (a tuple: any one of them;
# TF Serving words a graph's shape error differently from the development server).
BAD_PREDICTS = {
    "wrong dtype": (_request(lon_lat=GOOD.astype(np.float64)),
                    grpc.StatusCode.INVALID_ARGUMENT, ("double", "float")),
    "wrong shape": (_request(lon_lat=np.array([1.0, 2.0], np.float32)),
                    grpc.StatusCode.INVALID_ARGUMENT, (("lon_lat", "shape", "dim"),)),
    "missing input": (_request(contract.PREDICT_FEATURES, lon_lat=GOOD),
                      grpc.StatusCode.INVALID_ARGUMENT, ("Missing", "image_features")),
    "extra input": (_request(lon_lat=GOOD, image_features=FEATURES),
                    grpc.StatusCode.INVALID_ARGUMENT, ("image_features",)),
    "NaN lon": (_request(lon_lat=np.array([[np.nan, 10.0]], np.float32)),
                grpc.StatusCode.INVALID_ARGUMENT, ("lon", "finite")),
    "lat out of range": (_request(contract.LOCATION_EMBEDDING,
                                  lon_lat=np.array([[10.0, 95.0]], np.float32)),
                         grpc.StatusCode.INVALID_ARGUMENT, ("lat", "[-90, 90]")),
    "lon out of range in predict_features": (
        _request(contract.PREDICT_FEATURES, image_features=FEATURES,
                 lon_lat=np.array([[-181.0, 0.0]], np.float32)),
        grpc.StatusCode.INVALID_ARGUMENT, ("lon", "[-180, 180]")),
    "oversized batch": (_request(lon_lat=np.zeros((33, 2), np.float32)),
                        grpc.StatusCode.INVALID_ARGUMENT, ("33", "maximum input batch size 32")),
    "unknown signature": (_request("nope", lon_lat=GOOD),
                          grpc.StatusCode.FAILED_PRECONDITION, ('"nope" not found',)),
    "unknown model": (_request(model="nope", lon_lat=GOOD),
                      grpc.StatusCode.NOT_FOUND, ("Servable not found", "nope")),
    "unknown version": (_request(version=7, lon_lat=GOOD),
                        grpc.StatusCode.NOT_FOUND, ("Servable not found", "7")),
}


def _assert_still_serving(stubs) -> None:
    response = stubs[0].Predict(_request(lon_lat=GOOD), timeout=10)
    assert response.outputs[contract.PROBABILITIES].tensor_shape.dim[1].size == 5


@pytest.mark.parametrize("case", sorted(BAD_PREDICTS))
def test_bad_predict_gets_code_and_message(stubs, case):
    request, code, words = BAD_PREDICTS[case]
    with pytest.raises(grpc.RpcError) as err:
        stubs[0].Predict(request, timeout=10)
    assert err.value.code() == code, err.value.details()
    for word in words:
        alternatives = word if isinstance(word, tuple) else (word,)
        assert any(w in err.value.details() for w in alternatives), (word, err.value.details())
    _assert_still_serving(stubs)


def test_unknown_model_status_and_version(stubs):
    for spec, words in (({"name": "nope"}, ("nope",)),
                        ({"name": "csp", "version": {"value": 7}}, ("7",))):
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = spec["name"]
        if "version" in spec:
            request.model_spec.version.value = spec["version"]["value"]
        with pytest.raises(grpc.RpcError) as err:
            stubs[1].GetModelStatus(request, timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert all(w in err.value.details() for w in words)
    _assert_still_serving(stubs)


def test_metadata_without_fields_is_invalid(stubs):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "csp"
    with pytest.raises(grpc.RpcError) as err:
        stubs[0].GetModelMetadata(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata_field" in err.value.details()


# Through the client: ServingError says what was wrong.
@pytest.mark.parametrize("lon_lat, words", [
    ([[2.0, 3.0], [np.nan, 3.0]], ("row 1", "lon", "finite")),
    ([[2.0, 3.0], [4.0, 5.0], [1.0, -90.5]], ("row 2", "lat=-90.5", "[-90, 90]")),
    ([[181.0, 0.0]], ("row 0", "lon=181")),
    ([[1.0, 2.0, 3.0]], ("shape", "[N, 2]")),
    ([], ("shape",)),
])
def test_client_checks_coordinates_before_sending(client, lon_lat, words):
    with pytest.raises(ServingError) as err:
        client.location_prior(lon_lat)
    assert err.value.client_side and err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_client_checks_feature_rows(client):
    with pytest.raises(ServingError, match=r"image_features must have shape \[2, F\]"):
        client.classify(np.zeros((3, 8)), [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ServingError, match="row 1: image_features has NaN"):
        client.classify([[0.0] * 8, [np.nan] * 8], [[0.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize("kwargs, code, words", [
    ({"model_name": "nope"}, "NOT_FOUND", ("model 'nope'", "Servable not found")),
    ({"version": 9}, "NOT_FOUND", ("version 9", "Specific(csp, 9)")),
    ({"version_label": "nope"}, "INVALID_ARGUMENT", ("unknown version label", "nope")),
])
def test_client_reports_unknown_model_version_label(server, kwargs, code, words):
    with CSPServingClient(server.address, **kwargs) as other:
        with pytest.raises(ServingError) as err:
            other.location_prior(GOOD)
    assert err.value.code.name == code and not err.value.client_side
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_client_reports_unknown_signature_and_bad_dtype(client):
    with pytest.raises(ServingError, match="unknown signature.*nope"):
        client.predict("nope", {contract.LON_LAT: GOOD})
    with pytest.raises(ServingError, match="INVALID_ARGUMENT.*double"):
        client.predict(contract.LOCATION_PRIOR, {contract.LON_LAT: GOOD.astype(np.float64)})
    assert client.location_prior(GOOD).shape == (1, 5)
