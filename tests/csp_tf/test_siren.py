"""``siren`` (csp_tf.models.siren): structure by hand, SIREN initialisation, seeded builds and
dropout (SegmentSeeds too), config validation, .keras and SavedModel round trips, and a fit of
spherical harmonics + SIREN to a checkerboard on the sphere."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import ConfigError, get_preset
from csp_tf.models import SirenNet, build_csp_model
from csp_tf.models.layers import SegmentSeeds, fold_seed, stateless_dropout
from csp_tf.models.location_encoder import build_location_encoder

SH_SIREN = {"location_encoder.position.type": "spherical_harmonics",
            "location_encoder.position.legendre_polys": 4, "location_encoder.network": "siren"}
LL = tf.constant([[10.0, 20.0], [-120.5, -33.25], [179.0, 89.0]])


def _config(**overrides):
    cfg = get_preset("demo").override({
        **SH_SIREN, "data.num_classes": 3, "data.feature_dim": 8,
        "location_encoder.hidden_dim": 32, "location_encoder.num_filts": 16,
        "location_encoder.num_hidden_layer": 2, **overrides})
    return cfg.validate()


def _net(**kwargs):
    net = SirenNet(**{"input_dim": 9, "output_dim": 5, "num_hidden_layer": 3, "hidden_dim": 64,
                      "dropout": 0.5, "seed": 3, **kwargs})
    net.build((None, net.input_dim))
    return net


def test_sh_plus_siren_from_the_config():
    m = build_csp_model(_config())
    net = m.location_encoder.network
    assert isinstance(net, SirenNet) and net.input_dim == 16  # L² = 4² harmonics
    assert [tuple(l.kernel.shape) for l in net.hidden] == [(16, 32), (32, 32)]
    assert tuple(net.head.kernel.shape) == (32, 16)
    assert (net.w0_initial, net.w0, net.dropout) == (30.0, 1.0, 0.5)
    assert m.location_embedding(LL).shape == (3, 16)


def test_forward_by_hand():
    """sin(30·(W₁x + b₁)), sin(1·(W₂h + b₂)), then linear: the layer equals numpy."""
    net = _net(input_dim=3, output_dim=2, num_hidden_layer=2, hidden_dim=4, w0=2.0)
    rng = np.random.default_rng(0)
    weights = []
    for layer in net.hidden + [net.head]:
        k = rng.normal(size=layer.kernel.shape).astype(np.float32) * 0.3
        b = rng.normal(size=layer.bias.shape).astype(np.float32) * 0.3
        layer.kernel.assign(k)
        layer.bias.assign(b)
        weights.append((k, b))
    x = rng.normal(size=(5, 3)).astype(np.float32)
    h = np.sin(30.0 * (x @ weights[0][0] + weights[0][1]))
    h = np.sin(2.0 * (h @ weights[1][0] + weights[1][1]))
    want = h @ weights[2][0] + weights[2][1]
    np.testing.assert_allclose(net(tf.constant(x)).numpy(), want, rtol=1e-4, atol=1e-5)
    # Training: inverted dropout on the pre-activation, before the sine (the reference's order).
    net.dropout, seed = 0.5, tf.constant([7, 8], tf.int64)
    keep = [stateless_dropout(tf.ones([5, 4]), 0.5, fold_seed(seed, j)).numpy() for j in (0, 1)]
    h = np.sin(30.0 * keep[0] * (x @ weights[0][0] + weights[0][1]))
    h = np.sin(2.0 * keep[1] * (h @ weights[1][0] + weights[1][1]))
    got = net(tf.constant(x), training=True, seed=seed).numpy()
    np.testing.assert_allclose(got, h @ weights[2][0] + weights[2][1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("w0", [1.0, 4.0])
def test_initialisation_is_siren(w0):
    """First layer U(±1/fan_in), later layers and the head U(±√(6/fan_in)/w0), biases alike;
    each bound nearly reached (so a too narrow init fails as well as a too wide one)."""
    net = _net(w0=w0)
    bounds = [1.0 / 9] + [np.sqrt(6.0 / 64) / w0] * 3  # hidden_0, hidden_1, hidden_2, head
    for layer, bound in zip(net.hidden + [net.head], bounds):
        for v in (layer.kernel.numpy(), layer.bias.numpy()):
            assert np.abs(v).max() <= bound * (1 + 1e-6), layer.name
            assert np.abs(v).max() > (0.9 if v.size > 50 else 0.5) * bound, layer.name


def test_seeded_builds_are_deterministic():
    a, b, c = _net(seed=3), _net(seed=3), _net(seed=4)
    for la, lb, lc in zip(a.weights, b.weights, c.weights):
        np.testing.assert_array_equal(la.numpy(), lb.numpy())
        assert not np.allclose(la.numpy(), lc.numpy())
    # no two layers share their draws
    firsts = [w.numpy().ravel()[:4] for w in a.weights if w.shape[0] == 64]
    assert len({tuple(f) for f in firsts}) == len(firsts)
    x = tf.random.stateless_normal([4, 9], seed=[1, 2])
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_dropout_needs_training_and_a_seed_and_is_seeded():
    net = _net()
    x = tf.random.stateless_normal([16, 9], seed=[1, 2])
    s1, s2 = tf.constant([1, 2], tf.int64), tf.constant([1, 3], tf.int64)
    ev = net(x).numpy()
    a = net(x, training=True, seed=s1).numpy()
    np.testing.assert_array_equal(a, net(x, training=True, seed=s1).numpy())
    assert not np.allclose(a, ev) and not np.allclose(a, net(x, training=True, seed=s2).numpy())
    np.testing.assert_array_equal(net(x, training=False, seed=s1).numpy(), ev)
    np.testing.assert_array_equal(net(x, training=True).numpy(), ev)  # no seed, no dropout
    no_drop = _net(dropout=0.0)
    np.testing.assert_array_equal(no_drop(x, training=True, seed=s1).numpy(), no_drop(x).numpy())


@pytest.mark.parametrize("jit", [False, True])
def test_segment_seeds_give_each_pass_its_own_mask(jit):
    """The merged pre-training call (csp_tf.train.steps.merged_location_passes) equals one call
    per pass with that pass's seed."""
    net = _net()
    xa = tf.random.stateless_normal([6, 9], seed=[1, 2])
    xb = tf.random.stateless_normal([10, 9], seed=[3, 4])
    sa, sb = tf.constant([5, 1], tf.int64), tf.constant([5, 2], tf.int64)
    merged = tf.function(lambda: net(tf.concat([xa, xb], 0), training=True,
                                     seed=SegmentSeeds([sa, sb], [6, 10])), jit_compile=jit)()
    separate = tf.concat([net(xa, training=True, seed=sa), net(xb, training=True, seed=sb)], 0)
    np.testing.assert_allclose(merged.numpy(), separate.numpy(), rtol=1e-5, atol=1e-6)


def test_merged_location_passes_with_siren():
    from csp_tf.train.steps import merged_location_passes

    m = build_csp_model(_config())
    x, xr = LL, tf.constant([[0.0, 0.0], [40.0, -60.0], [-80.0, 10.0]])
    seed = tf.constant([4, 9], tf.int64)
    e, r, e_pos = merged_location_passes(m, x, xr, True, seed, 1)
    emb = lambda pts, salt: m.location_embedding(pts, training=True, seed=fold_seed(seed, salt))
    np.testing.assert_allclose(e.numpy(), emb(x, 1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r[0].numpy(), emb(xr, 3).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(e_pos.numpy(), emb(x, 4).numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(e.numpy(), e_pos.numpy())


def test_config_validation():
    with pytest.raises(ConfigError, match="num_hidden_layer=0 must be >= 1"):
        _config(**{"location_encoder.num_hidden_layer": 0})
    with pytest.raises(ConfigError, match="network='siren' does not fit"):
        get_preset("demo").override({"location_encoder.position.type": "theorydiag",
                                     "location_encoder.network": "siren"}).validate()
    with pytest.raises(ValueError, match="num_hidden_layer=0"):
        SirenNet(4, 4, num_hidden_layer=0)
    assert _config().location_encoder.resolved_network() == "siren"


def test_layer_config_round_trip():
    net = _net(w0_initial=20.0, w0=1.5, dropout=0.25, seed=7)
    back = SirenNet.from_config(net.get_config())
    for key in SirenNet.config_keys:
        assert getattr(back, key) == getattr(net, key), key


def _perturbed_model():
    m = build_csp_model(_config())
    for w in m.location_encoder.trainable_weights:  # differ from the seeded initial values
        w.assign(w + 0.1 * tf.random.stateless_normal(w.shape, [1, 2]))
    return m


def test_keras_file_round_trip(keras_round_trip):
    m = _perturbed_model()
    back = keras_round_trip(m, build_csp_model(_config()), LL)
    net = back.location_encoder.network
    assert isinstance(net, SirenNet) and net.get_config() == m.location_encoder.network.get_config()


def test_saved_model_export_round_trip(tmp_path):
    from csp_tf.export import export_saved_model

    cfg = _config()
    m = _perturbed_model()
    path = export_saved_model(m, str(tmp_path), config=cfg, class_names=["a", "b", "c"],
                              version=1, warmup=False)
    loaded = tf.saved_model.load(path)
    emb = loaded.signatures["location_embedding"](lon_lat=LL)["embedding"].numpy()
    np.testing.assert_allclose(emb, m.location_embedding(LL).numpy(), rtol=1e-5, atol=1e-6)


def _checkerboard(n=2000, cell=30.0):
    rng = np.random.default_rng(0)
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))  # area-uniform on the sphere
    lon = rng.uniform(-180, 180, n)
    y = ((np.floor((lon + 180) / cell) + np.floor((lat + 90) / cell)) % 2).astype(np.int32)
    return tf.constant(np.stack([lon, lat], 1), tf.float32), y


def _fit(model, x, y, lr, steps=300):
    opt = keras.optimizers.Adam(lr)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x)))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))

    for _ in range(steps):
        step()
    return float(np.mean(np.argmax(model(x).numpy(), 1) == y))


def test_sh_siren_fits_a_checkerboard_on_the_sphere():
    """SH (L = 10) + SIREN learns a 30° two-class checkerboard (72 cells) to ≥ 98 % train
    accuracy in 300 full-batch Adam steps. The task needs the network: a linear layer on the same
    harmonics stays near 91 % (also with 2000 steps), and the untrained encoder is at chance."""
    cfg = _config(**{"location_encoder.position.legendre_polys": 10,
                     "location_encoder.hidden_dim": 64, "location_encoder.num_filts": 2,
                     "location_encoder.dropout": 0.0}).location_encoder
    x, y = _checkerboard()
    encoder = build_location_encoder(cfg, seed=0)
    chance = float(np.mean(np.argmax(encoder(x).numpy(), 1) == y))
    assert 0.35 < chance < 0.65
    assert _fit(encoder, x, y, lr=1e-3) >= 0.98
    features = encoder.position_encoder(x)
    linear = keras.Sequential([keras.Input((features.shape[-1],)), keras.layers.Dense(2)])
    assert _fit(linear, features, y, lr=1e-1) < 0.95
