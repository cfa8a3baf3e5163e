"""The serving contract as TF Serving keeps it, on the stand-in model:

* Predict outputs are in the typed fields (``float_val``, ``int_val``), as TF Serving's
  ``Tensor::AsProtoField`` writes them, never in ``tensor_content``;
* Classify works on the ``classify`` signature (label names and scores), Regress is rejected;
* a row without a location has BOTH lon and lat NaN; one NaN is INVALID_ARGUMENT naming it.

The same checks on a real ``csp_tf.export`` model are in test_real_export.py.
"""

import re

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from csp_tf import warmup
from csp_tf.coords import rule
from serving import contract
from serving.client import CSPServingClient, ServingError

ATOL = 1e-5
LON_LAT = np.array([[2.35, 48.86], [-122.4, 37.8], [151.2, -33.9]], np.float32)
FEATURES = np.random.default_rng(3).normal(size=(3, 8)).astype(np.float32)


def _predict(stubs, signature, **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = contract.MODEL_NAME
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return stubs[0].Predict(request, timeout=10)


def _classify_request(examples, signature=contract.CLASSIFY, context=None):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = contract.MODEL_NAME
    request.model_spec.signature_name = signature
    target = (request.input.example_list_with_context if context is not None
              else request.input.example_list)
    for row in examples:
        target.examples.add().CopyFrom(tf.train.Example.FromString(row))
    if context is not None:
        target.context.CopyFrom(context)
    return request


@pytest.mark.parametrize("signature, inputs", [
    (contract.LOCATION_PRIOR, {contract.LON_LAT: LON_LAT}),
    (contract.LOCATION_EMBEDDING, {contract.LON_LAT: LON_LAT}),
    (contract.PREDICT_FEATURES, {contract.LON_LAT: LON_LAT, contract.IMAGE_FEATURES: FEATURES}),
])
def test_predict_outputs_are_in_the_typed_fields(stubs, standin_model, signature, inputs):
    """A client reading ``float_val``/``int_val`` directly (as many TF Serving clients do) gets
    the values; ``tensor_content`` stays empty."""
    response = _predict(stubs, signature, **inputs)
    want = standin_model.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    for key, proto in response.outputs.items():
        expected = want[key].numpy()
        assert proto.tensor_content == b"", key
        assert [d.size for d in proto.tensor_shape.dim] == list(expected.shape), key
        field = proto.int_val if expected.dtype == np.int32 else proto.float_val
        np.testing.assert_allclose(np.array(field).reshape(expected.shape), expected, atol=ATOL,
                                   err_msg=key)


def test_classify_rpc_returns_label_names_and_scores(client, stubs, standin_model):
    examples = warmup.serialize_examples(FEATURES, LON_LAT)
    want = standin_model.signatures[contract.PREDICT_FEATURES](
        image_features=tf.constant(FEATURES), lon_lat=tf.constant(LON_LAT))
    got = client.classify_rpc(examples)
    assert client.last_version == 1 and len(got) == 3
    for i, row in enumerate(got):
        assert [label for label, _ in row] == [
            f"standin_class_{c}" for c in want[contract.TOP_K_CLASSES].numpy()[i]]
        np.testing.assert_allclose([score for _, score in row],
                                   want[contract.TOP_K_SCORES].numpy()[i], atol=ATOL)
    assert client.top_labels(FEATURES, LON_LAT) == got
    response = stubs[0].Classify(_classify_request(examples), timeout=10)
    assert response.model_spec.signature_name == contract.CLASSIFY
    assert response.model_spec.version.value == 1


def test_classify_with_context_merges_like_tf_serving(client):
    """``example_list_with_context``: the context's features are shared; an example's own
    features win (TF Serving concatenates context + example bytes)."""
    plain = warmup.serialize_examples(FEATURES, LON_LAT)
    context = tf.train.Example.FromString(plain[0])  # lon/lat/features of row 0
    only_features = []
    for row in plain:
        example = tf.train.Example.FromString(row)
        del example.features.feature["lon"]
        del example.features.feature["lat"]
        only_features.append(example)
    with_context = client.classify_rpc(only_features, context=context)
    want = client.classify_rpc(warmup.serialize_examples(
        FEATURES, np.repeat(LON_LAT[:1], 3, axis=0)))
    for got_row, want_row in zip(with_context, want):
        assert [c for c, _ in got_row] == [c for c, _ in want_row]
        np.testing.assert_allclose([s for _, s in got_row], [s for _, s in want_row], atol=ATOL)


@pytest.mark.parametrize("signature, inputs, code, words", [
    (contract.SERVING_DEFAULT, None, grpc.StatusCode.INVALID_ARGUMENT,
     ("Expected classification signature method_name", contract.CLASSIFY_METHOD)),
    ("nope", None, grpc.StatusCode.INVALID_ARGUMENT, ("No signature was found", "nope")),
    (contract.CLASSIFY, [], grpc.StatusCode.INVALID_ARGUMENT, ("Input is empty",)),
])
def test_bad_classify_requests(stubs, signature, inputs, code, words):
    examples = warmup.serialize_examples(FEATURES, LON_LAT) if inputs is None else inputs
    with pytest.raises(grpc.RpcError) as err:
        stubs[0].Classify(_classify_request(examples, signature), timeout=10)
    assert err.value.code() == code
    for word in words:
        assert word in err.value.details(), (word, err.value.details())
    assert _predict(stubs, contract.LOCATION_PRIOR, lon_lat=LON_LAT).outputs  # still serving


def test_regress_is_rejected_clearly(stubs):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = contract.MODEL_NAME
    request.input.example_list.examples.add().CopyFrom(
        tf.train.Example.FromString(warmup.serialize_examples(FEATURES[:1], LON_LAT[:1])[0]))
    with pytest.raises(grpc.RpcError) as err:
        stubs[0].Regress(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "regression" in err.value.details() and "Classify" in err.value.details()


# --- one NaN coordinate vs no location (both NaN) -----------------------------------------
@pytest.mark.parametrize("lon, lat, field", [(np.nan, 45.0, "lon"), (10.0, np.nan, "lat"),
                                             (np.nan, 95.0, "lon")])
def test_one_nan_coordinate_is_invalid_everywhere(client, stubs, lon, lat, field):
    coords = np.array([[lon, lat]], np.float32)
    feats = FEATURES[:1]
    examples = warmup.serialize_examples(feats, coords)
    calls = {
        "serving_default": lambda: client.classify_examples(examples),
        "predict_features": lambda: client.predict(contract.PREDICT_FEATURES, {
            contract.IMAGE_FEATURES: feats, contract.LON_LAT: coords}),
        "classify": lambda: client.classify_rpc(examples),
    }
    for name, call in calls.items():
        with pytest.raises(ServingError) as err:
            call()
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, name
        assert not err.value.client_side and rule(field) in str(err.value), (name, str(err.value))
    # The client refuses it before sending, in the same words.
    with pytest.raises(ServingError, match=re.escape(f"row 0: {field}=nan: {rule(field)}")) as err:
        client.top_labels(feats, coords)
    assert err.value.client_side


def test_both_nan_is_no_location_everywhere(client, standin_model):
    coords = np.array([[np.nan, np.nan], [2.35, 48.86]], np.float32)
    feats = FEATURES[:2]
    image_only = standin_model.signatures[contract.PREDICT_FEATURES](
        image_features=tf.constant(feats), lon_lat=tf.constant([[0.0, 0.0]] * 2))[
        contract.IMAGE_PROBABILITIES].numpy()
    for out in (client.classify(feats, coords),
                client.classify_examples(warmup.serialize_examples(feats, coords))):
        np.testing.assert_allclose(out[contract.PROBABILITIES][0], image_only[0], atol=ATOL)
        assert not np.allclose(out[contract.PROBABILITIES][1], image_only[1], atol=1e-3)
    top = client.top_labels(feats, coords)
    np.testing.assert_allclose(top[0][0][1], image_only[0].max(), atol=ATOL)
