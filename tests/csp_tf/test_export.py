"""Export: signatures equal the in-process model; saved_model_cli accepts it; bad coordinates fail
inside the graph; warmup requests replay against the loaded SavedModel."""

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


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = C, F
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    model = build_csp_model(cfg)
    base = str(tmp_path_factory.mktemp("export"))
    path = export_saved_model(model, base, config=cfg, class_names=[f"c{i}" for i in range(C)],
                              version=3, top_k=3)
    return model, path, tf.saved_model.load(path)


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
    ("predict_features", [[np.inf, 0.0]], "longitude"),
])
def test_bad_coordinates_fail_in_graph(exported, sig, ll, needle):
    _, _, loaded = exported
    kwargs = {"lon_lat": tf.constant(ll, tf.float32)}
    if sig == "predict_features":
        kwargs["image_features"] = tf.zeros([1, F])
    with pytest.raises(tf.errors.InvalidArgumentError, match=needle):
        loaded.signatures[sig](**kwargs)


def test_warmup_requests_replay(exported):
    from serving.warmup import read_warmup_requests
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
    for name in ("serving_default", "predict_features", "location_embedding", "location_prior"):
        assert f"signature_def['{name}']" in out.stdout


def test_existing_version_is_not_overwritten(exported, tmp_path):
    model, path, _ = exported
    with pytest.raises(FileExistsError):
        export_saved_model(model, os.path.dirname(path), version=3)
