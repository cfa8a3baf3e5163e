"""The production exporter's SavedModel served over gRPC (dev server, or real TF Serving with
CSP_TF_MODEL_SERVER): every signature equals the in-process SavedModel; bad coordinates are
INVALID_ARGUMENT naming the field; the server keeps serving."""

import grpc
import numpy as np
import pytest
import tensorflow as tf

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
    base = str(tmp_path_factory.mktemp("real") / "csp")
    path = export_saved_model(build_csp_model(cfg), base, config=cfg, version=1)
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
