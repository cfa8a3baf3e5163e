"""Export: signatures equal the in-process model (whose weights are perturbed first, so a
SavedModel that lost weights cannot pass); saved_model_cli accepts it; bad coordinates fail
inside the graph (one NaN coordinate too; both NaN = no location); the classify signature;
warmup requests replay against the loaded SavedModel."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import get_preset
from csp_tf.export import export_saved_model
from csp_tf.models import build_csp_model

F, C = 6, 5


def _config():
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = C, F
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    return cfg


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = _config()
    model = build_csp_model(cfg)
    perturb_weights(model, seed=7)
    base = str(tmp_path_factory.mktemp("export"))
    path = export_saved_model(model, base, config=cfg, class_names=[f"c{i}" for i in range(C)],
                              version=3, top_k=3)
    return model, path, tf.saved_model.load(path)


def perturb_weights(model, seed: int, scale: float = 0.3) -> None:
    """Adds seeded noise to every variable: a reload that rebuilds the initial (seeded) weights
    instead of reading the saved ones no longer matches."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        x = v.numpy()
        v.assign(x + rng.normal(scale=scale, size=x.shape).astype(x.dtype))


def test_export_holds_the_perturbed_weights_not_the_initial_ones(exported):
    """Guards the test itself: a fresh model (initial weights) answers differently, so the
    equality tests below can only pass if the SavedModel holds the changed weights."""
    model, _, loaded = exported
    fresh = build_csp_model(_config())
    ll = tf.constant([[10.0, 20.0], [-120.5, -33.25]])
    feats = tf.random.stateless_normal([2, F], seed=[3, 3])
    got = loaded.signatures["predict_features"](image_features=feats, lon_lat=ll)
    assert not np.allclose(got["probabilities"].numpy(),
                           fresh.predict_all(ll, feats)["probabilities"].numpy(), atol=1e-4)
    emb = loaded.signatures["location_embedding"](lon_lat=ll)["embedding"].numpy()
    assert not np.allclose(emb, fresh.location_embedding(ll).numpy(), atol=1e-4)
    for name, variable in ((v.path, v) for v in model.weights):
        assert not np.allclose(variable.numpy(), _initial(fresh, name), atol=1e-6), name


def _initial(fresh, path):
    return next(v.numpy() for v in fresh.weights if v.path == path)


def _example(feats, lon=None, lat=None):
    f = {"image_features": tf.train.Feature(float_list=tf.train.FloatList(value=feats))}
    if lon is not None:
        f["lon"] = tf.train.Feature(float_list=tf.train.FloatList(value=[lon]))
        f["lat"] = tf.train.Feature(float_list=tf.train.FloatList(value=[lat]))
    return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()


def test_layout_and_assets(exported):
    _, path, _ = exported
    assert os.path.basename(path) == "3"
    for name in ("saved_model.pb", "variables", "assets.extra/tf_serving_warmup_requests",
                 "assets.extra/config.yaml", "assets.extra/labels.txt", "assets.extra/model.keras"):
        assert os.path.exists(os.path.join(path, name)), name


def test_signatures_equal_in_process_model(exported):
    model, _, loaded = exported
    ll = np.array([[10.0, 20.0], [-120.5, -33.25], [179.9, -89.9]], np.float32)
    feats = np.random.default_rng(0).normal(size=(3, F)).astype(np.float32)
    want = model.predict_all(ll, feats)
    got = loaded.signatures["predict_features"](image_features=tf.constant(feats), lon_lat=tf.constant(ll))
    np.testing.assert_allclose(got["probabilities"].numpy(), want["probabilities"].numpy(), atol=1e-6)
    ex = tf.constant([_example(feats[i], *ll[i]) for i in range(3)])
    got2 = loaded.signatures["serving_default"](examples=ex)
    np.testing.assert_allclose(got2["probabilities"].numpy(), want["probabilities"].numpy(), atol=1e-6)
    top = np.argsort(-want["probabilities"].numpy(), axis=1)[:, :3]
    np.testing.assert_array_equal(got2["top_k_classes"].numpy(), top)
    emb = loaded.signatures["location_embedding"](lon_lat=tf.constant(ll))["embedding"]
    np.testing.assert_allclose(emb.numpy(), model.location_embedding(ll).numpy(), atol=1e-6)
    prior = loaded.signatures["location_prior"](lon_lat=tf.constant(ll))["probabilities"]
    np.testing.assert_allclose(prior.numpy(), model.location_probs(ll).numpy(), atol=1e-6)


def test_missing_location_falls_back_to_image_only(exported):
    model, _, loaded = exported
    feats = np.ones([F], np.float32)
    out = loaded.signatures["serving_default"](examples=tf.constant([_example(feats)]))
    np.testing.assert_allclose(out["probabilities"].numpy(), model.image_probs(feats[None]).numpy(), atol=1e-6)


@pytest.mark.parametrize("sig,ll,needle", [
    ("location_prior", [[200.0, 0.0]], "longitude"),
    ("location_prior", [[0.0, 95.0]], "latitude"),
    ("location_embedding", [[np.nan, 0.0]], "longitude"),
    ("location_prior", [[np.nan, np.nan]], "longitude"),
    ("predict_features", [[np.inf, 0.0]], "longitude"),
    ("predict_features", [[np.nan, 95.0]], "longitude"),
    ("predict_features", [[np.nan, 45.0]], "longitude"),
    ("predict_features", [[10.0, np.nan]], "latitude"),
])
def test_bad_coordinates_fail_in_graph(exported, sig, ll, needle):
    _, _, loaded = exported
    kwargs = {"lon_lat": tf.constant(ll, tf.float32)}
    if sig == "predict_features":
        kwargs["image_features"] = tf.zeros([1, F])
    with pytest.raises(tf.errors.InvalidArgumentError, match=needle):
        loaded.signatures[sig](**kwargs)


@pytest.mark.parametrize("lon,lat,needle", [(np.nan, 95.0, "longitude"),
                                             (None, 45.0, "longitude"),
                                             (10.0, None, "latitude")])
def test_one_missing_coordinate_in_an_example_is_an_error(exported, lon, lat, needle):
    """Only BOTH lon and lat NaN (or both absent) mean "no location"; one is an error."""
    _, _, loaded = exported
    f = {"image_features": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0] * F))}
    for key, value in (("lon", lon), ("lat", lat)):
        if value is not None:
            f[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    ex = tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()
    for sig, arg in (("serving_default", "examples"), ("classify", "inputs")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=needle):
            loaded.signatures[sig](**{arg: tf.constant([ex])})


def test_classify_signature_for_tf_serving(exported):
    from tensorflow.core.protobuf import saved_model_pb2

    model, path, loaded = exported
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        graph = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
    sig = graph.signature_def["classify"]
    assert sig.method_name == "tensorflow/serving/classify"
    assert set(sig.inputs) == {"inputs"} and set(sig.outputs) == {"classes", "scores"}
    assert graph.signature_def["serving_default"].method_name == "tensorflow/serving/predict"
    # fingerprint.pb was rewritten to match the edited saved_model.pb
    assert tf.saved_model.experimental.read_fingerprint(path).saved_model_checksum
    ll = np.array([[10.0, 20.0], [np.nan, np.nan]], np.float32)
    feats = np.random.default_rng(1).normal(size=(2, F)).astype(np.float32)
    out = loaded.signatures["classify"](inputs=tf.constant(
        [_example(feats[0], *ll[0]), _example(feats[1])]))
    want = model.predict_all(ll, feats)["probabilities"].numpy()
    top = np.argsort(-want, axis=1)[:, :3]
    assert out["classes"].numpy().tolist() == [[f"c{i}".encode() for i in r] for r in top]
    np.testing.assert_allclose(out["scores"].numpy(), np.take_along_axis(want, top, 1), atol=1e-6)


def test_class_names_must_match_the_classes(exported, tmp_path):
    model, _, _ = exported
    with pytest.raises(ValueError, match="2 class names"):
        export_saved_model(model, str(tmp_path), class_names=["a", "b"], version=1, warmup=False)


def test_warmup_requests_replay(exported):
    from csp_tf.warmup import read_warmup_requests
    _, path, loaded = exported
    logs = read_warmup_requests(os.path.join(path, "assets.extra", "tf_serving_warmup_requests"))
    assert {l.predict_log.request.model_spec.signature_name for l in logs} == {
        "serving_default", "predict_features", "location_embedding", "location_prior"}
    for l in logs:
        req = l.predict_log.request
        inputs = {k: tf.make_ndarray(v) for k, v in req.inputs.items()}
        loaded.signatures[req.model_spec.signature_name](**{k: tf.constant(v) for k, v in inputs.items()})


def test_saved_model_cli_accepts_it(exported):
    _, path, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("serving_default", "predict_features", "location_embedding", "location_prior",
                 "classify"):
        assert f"signature_def['{name}']" in out.stdout


def test_existing_version_is_not_overwritten(exported, tmp_path):
    model, path, _ = exported
    with pytest.raises(FileExistsError):
        export_saved_model(model, os.path.dirname(path), version=3)
