"""The stand-alone location encoder export: .keras + SavedModel, reloaded equal, one-liner."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf import pretrained
from csp_tf.configs import get_preset
from csp_tf.models import build_csp_model


def test_export_and_load_location_encoder(tmp_path):
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 6
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    model = build_csp_model(cfg)
    rng = np.random.default_rng(0)
    for v in model.location_encoder.weights:  # a trained encoder, not the seeded init
        v.assign(v.numpy() + rng.normal(0, 0.1, v.shape).astype(v.dtype))
    out = pretrained.export_location_encoder(model, str(tmp_path / "enc"), config=cfg,
                                             card={"data": "test"}, sources_md="# test\n")
    x = np.array([[10.0, 20.0], [-70.0, -30.0]], np.float32)
    want = model.location_embedding(x).numpy()
    np.testing.assert_allclose(pretrained.load_location_encoder(out)(x).numpy(), want, atol=1e-5)
    sig = tf.saved_model.load(out + "/saved_model").signatures["location_embedding"]
    np.testing.assert_allclose(sig(lon_lat=tf.constant(x))["embedding"].numpy(), want, atol=1e-5)
    fresh = build_csp_model(cfg).location_embedding(x).numpy()
    assert not np.allclose(fresh, want, atol=1e-3)  # the perturbed weights were what shipped


def test_unknown_encoder_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no pre-trained location encoder 'nowhere'"):
        pretrained.load_location_encoder("nowhere")


def test_shipped_encoders_load_and_embed():
    for name in pretrained.available():
        enc = pretrained.load_location_encoder(name)
        e = enc(np.array([[2.35, 48.86]], np.float32)).numpy()
        assert e.shape[0] == 1 and np.all(np.isfinite(e))
