"""Location heads (reference sigmoid vs natural softmax) and the calibrated fusion in CSPModel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import ConfigError, get_preset
from csp_tf.models import build_csp_model
from csp_tf.models.csp_model import fuse_calibrated


def _model(preset="demo", c=5, f=8):
    cfg = get_preset(preset)
    cfg.data.num_classes, cfg.data.feature_dim = c, f
    return build_csp_model(cfg), cfg


def test_reference_presets_keep_the_sigmoid_head_and_product_fusion():
    m, cfg = _model("inat2018")
    assert m.location_head == "sigmoid" and m.fusion == "product" and m.class_head.bias is None
    assert (cfg.finetune.location_loss, cfg.finetune.sampler) == ("presence", "balanced")
    assert not cfg.data.standardize_features


def test_natural_head_is_a_softmax_with_bias():
    m, cfg = _model("demo")
    assert m.location_head == "softmax" and m.class_head.bias is not None
    p = m.location_probs(tf.constant([[10.0, 20.0], [-70.0, -30.0]])).numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


def test_presets_take_shapes_from_the_data():
    cfg = get_preset("inat2018")
    assert (cfg.data.feature_dim, cfg.data.num_classes) == (0, 0)


def test_calibrated_fusion_is_bayes_rule_at_unit_weights():
    img = tf.constant([[0.6, 0.3, 0.1]])
    loc = tf.constant([[0.2, 0.5, 0.3]])
    prior = tf.math.log(tf.constant([0.5, 0.25, 0.25]))
    out = fuse_calibrated(img, loc, tf.constant([[0.0, 0.0]]), tf.constant([1.0, 1.0, 1.0]), prior)
    want = np.array([0.6 * 0.2 / 0.5, 0.3 * 0.5 / 0.25, 0.1 * 0.3 / 0.25])
    np.testing.assert_allclose(out.numpy()[0], want / want.sum(), rtol=1e-5)
    missing = fuse_calibrated(img, loc, tf.constant([[np.nan, np.nan]]), tf.constant([1.0, 1.0, 1.0]), prior)
    np.testing.assert_allclose(missing.numpy(), img.numpy())


def test_fusion_weights_and_prior_are_saved_in_the_keras_file(tmp_path):
    m, _ = _model("demo")
    m.fusion_weights.assign([0.5, 1.5, 1.0])
    m.log_prior.assign(np.log(np.full(5, 0.2, np.float32)) + np.arange(5, dtype=np.float32) * 0.01)
    x = tf.constant([[1.0, 2.0]]), tf.constant(np.ones((1, 8), np.float32))
    before = m.predict_all(*x)["probabilities"].numpy()
    m.save(str(tmp_path / "m.keras"))
    back = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(back.fusion_weights.numpy(), [0.5, 1.5, 1.0])
    np.testing.assert_allclose(back.predict_all(*x)["probabilities"].numpy(), before, rtol=1e-6)


@pytest.mark.parametrize("key,value,needle", [
    ("finetune.location_loss", "hinge", "finetune.location_loss='hinge'"),
    ("finetune.fusion", "sum", "finetune.fusion='sum'"),
    ("finetune.image_classifier_l2_grid", "a,b", "image_classifier_l2_grid"),
])
def test_new_finetune_options_are_validated(key, value, needle):
    with pytest.raises(ConfigError, match=needle):
        get_preset("demo").override({key: value}).validate()


# ----- the encoders' own heads: theorydiag and hexagridcell (docs/reference.md §2.5, §2.6) --
def _head_model(position, overrides=None, **options):
    cfg = get_preset("inat2018")  # leakyrelu (slope 0.2)
    cfg.data.num_classes, cfg.data.feature_dim = 3, 8
    cfg.location_encoder.position.type = position
    for k, v in options.items():
        setattr(cfg.location_encoder.position, k, v)
    cfg = cfg.override({"location_encoder.num_filts": 4, **(overrides or {})}).validate()
    return build_csp_model(cfg)


def _leaky(x):
    return np.where(x > 0, x, 0.2 * x)


LON, LAT = 30.0, 60.0


@pytest.mark.parametrize("use_postmat", [True, False])
def test_theorydiag_head_by_hand(use_postmat):
    from csp_tf.models import DiagHead

    m = _head_model("theorydiag", {"location_encoder.use_postmat": use_postmat},
                    frequency_num=2, min_radius=1.0, max_radius=10.0)  # f = [1, 0.1]
    head = m.location_encoder.network
    assert isinstance(head, DiagHead) and tuple(head.proj.shape) == (2, 6, 2)
    assert (head.postmat is not None) == use_postmat
    proj = np.arange(24, dtype=np.float32).reshape(2, 6, 2) / 10 - 1
    head.proj.assign(proj)
    k = np.array([[0.5, -1, 0, 0.2], [0, 1, 0.3, 0], [1, 0, -0.5, 0], [0, 0, 1, 2]], np.float32)
    b = np.array([0.1, -0.2, 0.3, -0.4], np.float32)
    if use_postmat:
        head.postmat.kernel.assign(k)
        head.postmat.bias.assign(b)
    # The theory features, written out: q_j = <(lon, lat), a_j>, per scale [sin, cos] of q_j f_s.
    q = [LON, -LON / 2 + LAT * np.sqrt(3) / 2, -LON / 2 - LAT * np.sqrt(3) / 2]
    x = np.array([[fn(qj * f) for qj in q for fn in (np.sin, np.cos)] for f in (1.0, 0.1)])
    z = np.concatenate([x[0] @ proj[0], x[1] @ proj[1]])  # block-diagonal, flattened to D = 4
    want = _leaky(z @ k + b) if use_postmat else _leaky(z)
    got = m.location_embedding(tf.constant([[LON, LAT]])).numpy()[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_theorydiag_init_is_pytorch_xavier_for_3d():
    cfg = get_preset("inat2018").override({"location_encoder.position.type": "theorydiag"})
    cfg.data.num_classes, cfg.data.feature_dim = 3, 8
    p = build_csp_model(cfg.validate()).location_encoder.network.proj.numpy()
    bound = np.sqrt(6.0 / (6 * 256 / 32 + 256))  # fan_in = 6·D/S, fan_out = D
    assert p.shape == (32, 6, 8) and 0.95 * bound < np.abs(p).max() <= bound


def test_hexagridcell_linear_head_by_hand():
    m = _head_model("hexagridcell", frequency_num=2, max_radius=4.0)  # f = [1, 1/4]
    net = m.location_encoder.network
    assert len(net.linears) == 1 and net.norms == [None]  # Linear(6S → D) → act → dropout only
    k = (np.arange(48, dtype=np.float32).reshape(12, 4) - 20) / 30
    b = np.array([0.0, 0.5, -0.5, 1.0], np.float32)
    net.linears[0].kernel.assign(k)
    net.linears[0].bias.assign(b)
    x = [np.sin(c * f + shift) for c in (LON, LAT) for f in (1.0, 0.25)
         for shift in (0.0, 2 * np.pi / 3, 4 * np.pi / 3)]
    got = m.location_embedding(tf.constant([[LON, LAT]])).numpy()[0]
    np.testing.assert_allclose(got, _leaky(np.array(x) @ k + b), rtol=1e-5, atol=1e-6)
    bound = np.sqrt(6.0 / (6 * 32 + 256))
    fresh = build_csp_model(get_preset("inat2018").override(
        {"location_encoder.position.type": "hexagridcell", "data.num_classes": 3, "data.feature_dim": 8}))
    assert np.abs(fresh.location_encoder.network.linears[0].kernel.numpy()).max() <= bound


@pytest.mark.parametrize("position,network", [("theorydiag", "ffn"), ("hexagridcell", "fcnet"),
                                              ("theorydiag", "linear"), ("gridcell", "diag"),
                                              ("wrap", "linear")])
def test_invalid_encoder_network_pairs_raise(position, network):
    cfg = get_preset("demo").override({"location_encoder.position.type": position,
                                       "location_encoder.network": network})
    cfg.data.num_classes, cfg.data.feature_dim = 3, 8
    with pytest.raises(ConfigError, match=f"network='{network}' does not fit"):
        cfg.validate()
    with pytest.raises(ConfigError, match="does not fit"):
        build_csp_model(cfg)


def test_theorydiag_needs_num_filts_a_multiple_of_s():
    cfg = get_preset("demo").override({"location_encoder.position.type": "theorydiag",
                                       "location_encoder.position.frequency_num": 5})
    with pytest.raises(ConfigError, match="num_filts=128 must be a multiple"):
        cfg.validate()


@pytest.mark.parametrize("position", ["theorydiag", "hexagridcell"])
def test_own_heads_round_trip_the_keras_file(position, tmp_path):
    m = _head_model(position, frequency_num=2, min_radius=1.0, max_radius=10.0) \
        if position == "theorydiag" else _head_model(position, frequency_num=2, max_radius=4.0)
    for w in m.location_encoder.trainable_weights:  # differ from the seeded initial values
        w.assign(w + tf.random.stateless_normal(w.shape, [1, 2]))
    x = tf.constant([[LON, LAT], [-120.5, -33.25]])
    before = m.location_embedding(x).numpy()
    m.save(str(tmp_path / "m.keras"))
    back = keras.saving.load_model(str(tmp_path / "m.keras"))
    assert type(back.location_encoder.network) is type(m.location_encoder.network)
    np.testing.assert_array_equal(back.location_embedding(x).numpy(), before)


@pytest.mark.parametrize("position,options", [
    ("rff", {"seed": 3, "frequency_num": 6}), ("gridcell", {"freq_init": "random", "seed": 5}),
    ("rbf", {"anchors": "uniform", "num_rbf_anchor_pts": 5, "rbf_kernel_size": 20.0})])
def test_random_parts_are_saved_as_drawn(position, options, tmp_path):
    cfg = get_preset("demo").override({"location_encoder.position.type": position,
                                       "data.num_classes": 3, "data.feature_dim": 8})
    for k, v in options.items():
        setattr(cfg.location_encoder.position, k, v)
    m = build_csp_model(cfg)
    saved = m.get_config()["location_encoder"]["position"][position]
    drawn = m.location_encoder.position_encoder.get_config()
    key = {"rff": "omega", "gridcell": "frequencies", "rbf": "anchor_pts"}[position]
    assert saved[key] == drawn[key] and cfg.location_encoder.position.options.to_dict()[key] is None
    x = tf.constant([[LON, LAT], [-120.5, -33.25]])
    m.save(str(tmp_path / "m.keras"))
    back = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(back.location_embedding(x).numpy(), m.location_embedding(x).numpy())


def test_config_activation_names_are_the_layers():
    from csp_tf.configs import ACTIVATIONS
    from csp_tf.models.layers import ACTIVATIONS as FUNCTIONS

    assert tuple(FUNCTIONS) == ACTIVATIONS
