"""Location encoder network and CSP model: reference structure, init, dropout, round trips."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import get_preset
from csp_tf.models import CSPModel, build_csp_model, fuse


def _model(pretrain_loss="contsoftmax", network="ffn", position="gridcell"):
    cfg = get_preset("inat2018")
    cfg.data.num_classes, cfg.data.feature_dim = 7, 16
    cfg.location_encoder.network = network
    cfg.location_encoder.position.type = position
    cfg.pretrain.loss = pretrain_loss
    return build_csp_model(cfg)


def test_csp_ffn_structure_matches_reference():
    """gridcell S=32 → Linear(128→512) → act → drop → LayerNorm(ε 1e-5) → Linear(512→256) → act → drop."""
    m = _model()
    ffn = m.location_encoder.network
    assert [l.kernel.shape for l in ffn.linears] == [(128, 512), (512, 256)]
    assert ffn.norms[0].epsilon == 1e-5 and ffn.norms[1] is None
    assert m.class_head.use_bias is False and tuple(m.class_head.kernel.shape) == (256, 7)
    assert tuple(m.img_dec.kernel.shape) == (16, 256) and m.img_dec.use_bias
    assert m.loc_dec is None


def test_initialisers_follow_pytorch():
    m = _model()
    ffn_k = m.location_encoder.network.linears[0].kernel.numpy()
    xavier = np.sqrt(6.0 / (128 + 512))
    assert np.abs(ffn_k).max() <= xavier and np.abs(ffn_k).max() > 0.9 * xavier
    head = m.class_head.kernel.numpy()
    assert np.abs(head).max() <= 1 / np.sqrt(256) and np.abs(head).max() > 0.9 / np.sqrt(256)


def test_final_embedding_is_post_activation_leakyrelu():
    m = _model()
    x = tf.constant([[10.0, 20.0], [-120.5, -33.25]] * 50)
    e = m.location_embedding(x).numpy()
    neg = e[e < 0]
    # leakyrelu(0.2) after the last Linear: negatives exist but are damped relative to positives.
    assert neg.size and np.abs(neg).mean() < 0.5 * e[e > 0].mean()


def test_dropout_needs_training_and_seed_and_is_deterministic():
    m = _model()
    x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    s1, s2 = tf.constant([1, 2], tf.int64), tf.constant([1, 3], tf.int64)
    a = m.location_embedding(x, training=True, seed=s1).numpy()
    b = m.location_embedding(x, training=True, seed=s1).numpy()
    c = m.location_embedding(x, training=True, seed=s2).numpy()
    ev = m.location_embedding(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, ev)
    np.testing.assert_array_equal(ev, m.location_embedding(x, training=False, seed=s1).numpy())


def test_fcnet_and_l2regress_variants():
    m = _model(pretrain_loss="l2regress", network="fcnet", position="wrap")
    assert m.img_dec is None and tuple(m.loc_dec.kernel.shape) == (256, 16)
    assert m.location_embedding(tf.zeros([3, 2])).shape == (3, 256)


def test_fcnet_dropout_defaults_to_the_reference_half_and_can_be_set():
    """The reference fixes the ResLayer dropout at 0.5 (docs/reference.md §2.11); ``fcnet_dropout``
    offers the fix, kept through a .keras round trip."""
    from csp_tf.models.location_encoder import FCNet

    assert get_preset("inat2018").location_encoder.fcnet_dropout == 0.5
    x = tf.random.stateless_uniform([64, 4], seed=[0, 1])
    seed = tf.constant([3, 4], tf.int64)
    half, none = FCNet(4, 32, res_dropout=0.5), FCNet(4, 32, res_dropout=0.0)
    assert half.res_dropout == FCNet(4, 32).res_dropout == 0.5
    assert not np.allclose(half(x, training=True, seed=seed), half(x))
    np.testing.assert_array_equal(none(x, training=True, seed=seed), none(x))
    assert FCNet.from_config(none.get_config()).res_dropout == 0.0


def test_fuse_uses_image_only_where_location_missing():
    img = tf.constant([[0.5, 0.5], [0.2, 0.8]])
    loc = tf.constant([[0.9, 0.1], [0.9, 0.1]])
    ll = tf.constant([[0.0, 0.0], [np.nan, np.nan]])
    np.testing.assert_allclose(fuse(img, loc, ll).numpy(), [[0.45, 0.05], [0.2, 0.8]], rtol=1e-6)


def _perturb(model, seed):
    """Seeded noise on EVERY variable: a reload that rebuilds the seeded initial weights instead
    of reading the file's can no longer match."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        x = v.numpy()
        v.assign(x + rng.normal(scale=0.3, size=x.shape).astype(x.dtype))


@pytest.mark.parametrize("network,position,loss", [("ffn", "gridcell", "contsoftmax"),
                                                   ("fcnet", "wrap", "l2regress"),
                                                   ("fcnet", "gridcell", "contsoftmax")])
def test_keras_file_round_trip(tmp_path, network, position, loss):
    """Every network and head survives ``.keras`` save/load with CHANGED weights: the location
    encoder (FFN, FCNet with its residual blocks), class head, img_dec / loc_dec and the image
    classifier."""
    m = _model(pretrain_loss=loss, network=network, position=position)
    fresh = _model(pretrain_loss=loss, network=network, position=position)
    _perturb(m, seed=11)
    path = os.path.join(tmp_path, "m.keras")
    m.save(path)
    r = keras.saving.load_model(path)
    assert isinstance(r, CSPModel)
    saved = {v.path: v.numpy() for v in m.weights}
    loaded = {v.path: v.numpy() for v in r.weights}
    assert set(loaded) == set(saved)
    initial = {v.path: v.numpy() for v in fresh.weights}
    for name, value in saved.items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)
        assert not np.allclose(value, initial[name]), f"{name} was not perturbed"
    heads = {"class_head", "image_classifier", "img_dec" if loss != "l2regress" else "loc_dec"}
    assert heads <= {name.split("/")[0] for name in saved}, sorted(saved)
    if network == "fcnet":
        assert sum("location_encoder" in name for name in saved) > 6  # residual blocks too
    ll = tf.constant([[10.0, 20.0], [-170.0, 80.0]])
    feats = tf.random.stateless_normal([2, 16], seed=[1, 1])
    inputs = {"lon_lat": ll, "image_features": feats}
    np.testing.assert_allclose(m(inputs).numpy(), r(inputs).numpy(), atol=1e-6)
    assert not np.allclose(m(inputs).numpy(), fresh(inputs).numpy(), atol=1e-4)
    for method, arg in (("location_embedding", ll), ("location_probs", ll),
                        ("image_probs", feats)):
        np.testing.assert_allclose(getattr(m, method)(arg).numpy(),
                                   getattr(r, method)(arg).numpy(), atol=1e-6, err_msg=method)
    decoder = m.img_dec if m.img_dec is not None else m.loc_dec
    reloaded = r.img_dec if r.img_dec is not None else r.loc_dec
    x = feats if m.img_dec is not None else m.location_embedding(ll)
    np.testing.assert_allclose(decoder(x).numpy(), reloaded(x).numpy(), atol=1e-6)
