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


def test_every_shipped_encoder_has_its_card_and_model_card():
    import json
    import os

    assert {"places", "earth"} <= set(pretrained.available())
    for name, path in pretrained.available().items():
        with open(os.path.join(path, "card.json")) as f:
            card = json.load(f)
        for key in ("name", "training_command", "config_hash", "data_fingerprint",
                    "data_commands", "embedding_dim", "model_card"):
            assert card.get(key), (name, key)
        assert card["name"] == name
        assert os.path.isfile(os.path.join(path, card["model_card"])), name
        assert os.path.isfile(os.path.join(path, "SOURCES.md")), name
        enc = pretrained.load_location_encoder(name)
        e = enc(np.array(card["check_points"], np.float32)).numpy()
        assert e.shape == (len(card["check_points"]), card["embedding_dim"]), name


def test_an_encoder_with_two_hidden_layers_is_a_base_for_fine_tuning(tmp_path):
    """The reloaded encoder's config is plain data: reading it neither copies nor rebuilds the
    model (a Keras-tracked dict did, and failed for a network of two hidden layers)."""
    from csp_tf.configs import LocationEncoderConfig, get_preset

    cfg = get_preset("demo").location_encoder
    cfg.num_hidden_layer, cfg.hidden_dim, cfg.num_filts = 2, 24, 8
    cfg.position.frequency_num = 4
    out = pretrained.export_encoder(pretrained.StandaloneLocationEncoder(cfg),
                                    str(tmp_path / "two_layers"), config=None)
    enc = pretrained.load_location_encoder(out)

    def plain(value):
        if isinstance(value, dict):
            return type(value) is dict and all(plain(v) for v in value.values())
        return not isinstance(value, (list, tuple)) or type(value) in (list, tuple)

    assert plain(enc.location_encoder_config)
    back = LocationEncoderConfig.from_dict(enc.location_encoder_config, "location_encoder.")
    assert back.model_fields() == cfg.model_fields()
