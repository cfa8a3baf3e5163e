"""The production exporter's SavedModel served over gRPC (dev server, or real TF Serving with
CSP_TF_MODEL_SERVER): every signature equals the in-process SavedModel; outputs are in the typed
fields; Classify answers label names; bad coordinates (one NaN included) are INVALID_ARGUMENT
naming the field, both NaN is "no location"; the server keeps serving."""

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from csp_tf import warmup
from csp_tf.configs import get_preset
from csp_tf.export import export_saved_model
from csp_tf.models import build_csp_model
from serving.client import CSPServingClient, ServingError

F, C = 6, 5


@pytest.fixture(scope="module")
def real_export(tmp_path_factory, serve_fn):
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = C, F
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    model = build_csp_model(cfg)
    rng = np.random.default_rng(5)  # trained-looking weights, not the seeded initial ones
    for v in model.weights:
        x = v.numpy()
        v.assign(x + rng.normal(scale=0.3, size=x.shape).astype(x.dtype))
    base = str(tmp_path_factory.mktemp("real") / "csp")
    path = export_saved_model(model, base, config=cfg, version=1, top_k=3,
                              class_names=[f"species_{c}" for c in range(C)])
    with serve_fn(base, str(tmp_path_factory.mktemp("work"))) as target:
        yield target, tf.saved_model.load(path)


def test_every_signature_matches_in_process(real_export):
    target, loaded = real_export
    ll = np.array([[10.0, 20.0], [-120.5, -33.25], [179.0, 89.0]], np.float32)
    feats = np.random.default_rng(1).normal(size=(3, F)).astype(np.float32)
    with CSPServingClient(target.address, model_name="csp") as client:
        client.wait_until_available(timeout_s=60)
        sig = loaded.signatures
        np.testing.assert_allclose(client.location_prior(ll),
                                   sig["location_prior"](lon_lat=tf.constant(ll))["probabilities"].numpy(), atol=1e-5)
        np.testing.assert_allclose(client.location_embedding(ll),
                                   sig["location_embedding"](lon_lat=tf.constant(ll))["embedding"].numpy(), atol=1e-5)
        got = client.classify(feats, ll)
        want = sig["predict_features"](image_features=tf.constant(feats), lon_lat=tf.constant(ll))
        np.testing.assert_allclose(got["probabilities"], want["probabilities"].numpy(), atol=1e-5)
        np.testing.assert_array_equal(got["top_k_classes"], want["top_k_classes"].numpy())


@pytest.mark.parametrize("ll,needle", [([[np.nan, 0.0]], "longitude"), ([[0.0, 95.0]], "latitude")])
def test_bad_coordinates_rejected_by_the_graph(real_export, ll, needle):
    target, _ = real_export
    with CSPServingClient(target.address, model_name="csp") as client:
        # Bypass the client's own coordinate check to see the server-side answer.
        with pytest.raises(ServingError) as e:
            client.predict("location_prior", {"lon_lat": np.array(ll, np.float32)})
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and needle in str(e.value)
        assert client.location_prior(np.array([[0.0, 0.0]], np.float32)).shape == (1, C)


def test_outputs_are_in_the_typed_fields(real_export):
    target, loaded = real_export
    ll = np.array([[10.0, 20.0], [-120.5, -33.25]], np.float32)
    feats = np.random.default_rng(2).normal(size=(2, F)).astype(np.float32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "csp"
    request.model_spec.signature_name = "predict_features"
    request.inputs["lon_lat"].CopyFrom(tf.make_tensor_proto(ll))
    request.inputs["image_features"].CopyFrom(tf.make_tensor_proto(feats))
    with grpc.insecure_channel(target.address) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30)
    want = loaded.signatures["predict_features"](image_features=tf.constant(feats),
                                                 lon_lat=tf.constant(ll))
    probs = response.outputs["probabilities"]
    assert probs.tensor_content == b"" and len(probs.float_val) == 2 * C
    np.testing.assert_allclose(np.reshape(probs.float_val, (2, C)),
                               want["probabilities"].numpy(), atol=1e-5)
    assert list(response.outputs["top_k_classes"].int_val) == \
        want["top_k_classes"].numpy().ravel().tolist()


def test_classify_rpc_answers_label_names(real_export):
    target, loaded = real_export
    ll = np.array([[10.0, 20.0], [np.nan, np.nan]], np.float32)
    feats = np.random.default_rng(4).normal(size=(2, F)).astype(np.float32)
    examples = warmup.serialize_examples(feats, ll)
    want = loaded.signatures["classify"](inputs=tf.constant(examples))
    with CSPServingClient(target.address) as client:
        got = client.top_labels(feats, ll)
        meta = client.metadata()["signatures"]["classify"]
    assert meta["method_name"] == "tensorflow/serving/classify"
    for i, row in enumerate(got):
        assert [label for label, _ in row] == [c.decode() for c in want["classes"].numpy()[i]]
        assert all(label.startswith("species_") for label, _ in row)
        np.testing.assert_allclose([s for _, s in row], want["scores"].numpy()[i], atol=1e-5)


@pytest.mark.parametrize("lon, lat, needle", [(np.nan, 95.0, "longitude"),
                                              (np.nan, 45.0, "longitude"),
                                              (10.0, np.nan, "latitude")])
def test_one_nan_coordinate_is_invalid_not_no_location(real_export, lon, lat, needle):
    target, _ = real_export
    feats = np.zeros((1, F), np.float32)
    coords = np.array([[lon, lat]], np.float32)
    examples = warmup.serialize_examples(feats, coords)
    with CSPServingClient(target.address) as client:
        for call in (lambda: client.classify_examples(examples),
                     lambda: client.classify_rpc(examples),
                     lambda: client.predict("predict_features", {
                         "image_features": feats, "lon_lat": coords})):
            with pytest.raises(ServingError) as e:
                call()
            assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and needle in str(e.value)


def test_both_nan_is_image_only(real_export):
    target, loaded = real_export
    feats = np.random.default_rng(6).normal(size=(1, F)).astype(np.float32)
    examples = warmup.serialize_examples(feats, np.array([[np.nan, np.nan]], np.float32))
    with CSPServingClient(target.address) as client:
        out = client.classify_examples(examples)
    np.testing.assert_allclose(out["probabilities"], out["image_probabilities"], atol=1e-6)
