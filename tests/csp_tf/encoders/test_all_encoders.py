"""Contract every registered position encoder meets (docs/architecture.md, docs/reference.md
§1-§2)."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import ENCODER_OPTIONS, PositionEncoderConfig
from csp_tf.encoders import ENCODERS, PositionEncoder, build_position_encoder, lookup_encoder

NAMES = ["gridcell", "gridcellnorm", "theory", "theorynorm", "theorydiag", "hexagridcell", "naive", "rbf",
         "rff", "geo_net_fft", "wrap", "nerf", "sphereC", "sphereC+", "sphereM", "sphereM+", "dfs",
         "spherical_harmonics", "tile", "geo_net_3d", "geoclip", "gridcell_hash"]

INTEGER_FREQS = dict(frequency_num=2, min_radius=0.5, max_radius=1.0)  # Sphere2Vec f = [2, 1]: periodic
# (name, constructor kwargs): small settings, plus variants that exercise the random parts.
CASES = [
    ("gridcell", dict(frequency_num=3, min_radius=1.0, max_radius=100.0)),
    ("gridcell", dict(frequency_num=3, min_radius=1.0, max_radius=100.0, freq_init="random", seed=5)),
    ("gridcellnorm", dict(frequency_num=3, min_radius=1.0, max_radius=100.0)),
    ("theory", dict(frequency_num=3, min_radius=1.0, max_radius=100.0)),
    ("theorynorm", dict(frequency_num=3, min_radius=0.01, max_radius=1.0)),
    ("theorydiag", dict(frequency_num=3, min_radius=1.0, max_radius=100.0)),
    ("hexagridcell", dict(frequency_num=3, max_radius=100.0)),
    ("naive", {}),
    ("rbf", dict(num_rbf_anchor_pts=5, rbf_kernel_size=30.0, seed=3)),
    ("rbf", dict(anchor_pts=[(10.0, 20.0), (-150.0, -60.0)], rbf_kernel_size=50.0)),
    ("rff", dict(frequency_num=6, rbf_kernel_size=2.0, seed=3)),
    ("rff", dict(frequency_num=6, rbf_kernel_size=0.5, rff_kernel_mode="bandwidth", seed=3)),
    ("geo_net_fft", {}),
    ("wrap", {}),
    ("geo_net_3d", {}),
    ("nerf", dict(frequency_num=3)),
    ("sphereC", INTEGER_FREQS),
    ("sphereC+", INTEGER_FREQS),
    ("sphereM", INTEGER_FREQS),
    ("sphereM+", INTEGER_FREQS),
    ("dfs", INTEGER_FREQS),
    ("spherical_harmonics", dict(legendre_polys=4)),
    ("spherical_harmonics", dict(legendre_polys=4, harmonics_calculation="closed-form")),
    ("tile", dict(tile_size=45.0, embedding_size=8, seed=1)),
    ("gridcell_hash", dict(frequency_num=3, min_radius=1.0, max_radius=100.0, grid_levels=2,
                           grid_coarsest=20.0, grid_finest=2.0, grid_log2_table_size=8, seed=1)),
    ("geoclip", dict(sigmas=[1.0, 16.0], encoded_size=4, seed=2)),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]
# Periodic in lon with period 360 (in the settings above), so continuous across the dateline.
PERIODIC = {"geo_net_fft", "wrap", "geo_net_3d", "nerf", "sphereC", "sphereC+", "sphereM", "sphereM+", "dfs",
            "spherical_harmonics"}

POLES_AND_DATELINE = np.array([(lon, lat) for lon in (-180.0, -179.999, 0.0, 179.999, 180.0)
                               for lat in (-90.0, -89.999, 0.0, 89.999, 90.0)], np.float32)
RANDOM_POINTS = np.stack([np.random.default_rng(0).uniform(-180, 180, 16),
                          np.random.default_rng(1).uniform(-90, 90, 16)], axis=1).astype(np.float32)


def make(name, kwargs):
    return lookup_encoder(name)(**kwargs)


def test_cases_cover_every_registered_name():
    assert sorted(ENCODERS) == sorted(NAMES)
    assert {n for n, _ in CASES} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_registry_lookup(name):
    cls = lookup_encoder(name)
    assert issubclass(cls, PositionEncoder) and cls.registry_name == name and name in ENCODERS


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown position encoder 'sphereX'") as err:
        lookup_encoder("sphereX")
    assert all(n in str(err.value) for n in NAMES)
    with pytest.raises(ValueError, match="known: .*gridcell"):
        build_position_encoder(PositionEncoderConfig(type="nope"))


def test_every_encoder_has_options_in_the_config():
    assert sorted(ENCODER_OPTIONS) == sorted(ENCODERS)


# Non-default options per kind; every field of every options class is a constructor argument.
SMALL = dict(frequency_num=3, min_radius=0.5, max_radius=90.0, num_rbf_anchor_pts=7,
             rbf_kernel_size=2.0, anchors="uniform", legendre_polys=3, tile_size=30.0,
             embedding_size=5, seed=4)


def expected_dim(name):
    s = 3
    return {"gridcell": 4 * s, "gridcellnorm": 4 * s, "theory": 6 * s, "theorynorm": 6 * s,
            "theorydiag": 6 * s, "hexagridcell": 6 * s, "naive": 2, "rbf": 7, "rff": s,
            "geo_net_fft": 4, "wrap": 4, "geo_net_3d": 3, "nerf": 6 * s, "sphereC": 3 * s,
            "sphereC+": 6 * s, "sphereM": 5 * s, "sphereM+": 8 * s, "dfs": 4 * s * s + 4 * s,
            "spherical_harmonics": 9, "tile": 5, "geoclip": 3 * 2 * 256,
            "gridcell_hash": 4 * s + 8 * 4}[name]


@pytest.mark.parametrize("name", NAMES)
def test_build_from_config_uses_every_option(name):
    cfg = PositionEncoderConfig(type=name)
    for key, value in SMALL.items():
        if hasattr(cfg.options, key):
            setattr(cfg, key, value)
    enc = build_position_encoder(cfg)
    assert type(enc) is lookup_encoder(name)
    assert enc.embedding_dim == expected_dim(name)
    assert enc(RANDOM_POINTS).shape == (16, expected_dim(name))
    # The saved layer config holds every option (random parts included) under the same name.
    saved = enc.get_config()
    for key, value in cfg.options.to_dict().items():
        if value is not None:
            assert saved[key] == value, key


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_shapes_and_leading_dims(name, kwargs):
    enc = make(name, kwargs)
    d = enc.embedding_dim
    flat = enc(RANDOM_POINTS[:6])
    assert flat.shape == (6, d) and flat.dtype == tf.float32
    nested = enc(RANDOM_POINTS[:6].reshape(2, 3, 2))
    assert nested.shape == (2, 3, d)
    np.testing.assert_allclose(nested.numpy().reshape(6, d), flat.numpy(), atol=1e-6)
    assert enc(RANDOM_POINTS[0]).shape == (d,)
    assert enc.compute_output_shape((None, 4, 2)) == (None, 4, d)
    assert keras.Input((2,)).shape[:1] == enc(keras.Input((2,))).shape[:1]
    assert enc(keras.Input((2,))).shape[-1] == d


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_finite_at_poles_and_dateline(name, kwargs):
    out = make(name, kwargs)(POLES_AND_DATELINE).numpy()
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name,kwargs", [c for c in CASES if c[0] in PERIODIC],
                         ids=[i for i, c in zip(IDS, CASES) if c[0] in PERIODIC])
def test_continuous_across_dateline(name, kwargs):
    enc = make(name, kwargs)
    for eps in (1e-2, 1e-3):
        pts = np.array([(180 - eps, lat) for lat in (-60, 0, 33.3)] + [(-180 + eps, lat) for lat in (-60, 0, 33.3)],
                       np.float32)
        out = enc(pts).numpy()
        # Lipschitz in lon: every feature here moves < 0.5 per degree (nerf: 4π·π/180 ≈ 0.22),
        # while a jump would be O(1).
        assert np.max(np.abs(out[:3] - out[3:])) < 0.5 * 2 * eps + 1e-6


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_xla_matches_eager(name, kwargs):
    enc = make(name, kwargs)
    pts = np.concatenate([RANDOM_POINTS, POLES_AND_DATELINE])
    eager = enc(pts).numpy()
    xla = tf.function(enc.__call__, jit_compile=True)(tf.constant(pts)).numpy()
    np.testing.assert_allclose(xla, eager, atol=1e-5)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_keras_serialization_round_trip(name, kwargs):
    enc = make(name, kwargs)
    before = enc(RANDOM_POINTS).numpy()
    blob = keras.saving.serialize_keras_object(enc)
    json.dumps(blob)  # plain JSON: the random parts are stored as lists
    clone = keras.saving.deserialize_keras_object(blob)
    assert type(clone) is type(enc) and clone.embedding_dim == enc.embedding_dim
    # The config alone reproduces the function (tile, gridcell_hash: their tables are seeded
    # from the config too).
    np.testing.assert_array_equal(clone(RANDOM_POINTS).numpy(), before)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_keras_file_round_trip(name, kwargs, tmp_path):
    enc = make(name, kwargs)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, enc(inputs))
    if enc.trainable_weights:  # make the saved weights differ from a fresh seeded init
        enc.trainable_weights[0].assign(enc.trainable_weights[0] + 1.0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(RANDOM_POINTS).numpy(), model(RANDOM_POINTS).numpy())


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_mixed_precision_keeps_float32(name, kwargs):
    # Degrees must not be cast to float16 under a mixed_float16 global policy.
    expected = make(name, kwargs)(RANDOM_POINTS).numpy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        enc = make(name, kwargs)
        out = enc(RANDOM_POINTS)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_only_the_table_encoders_have_weights(name, kwargs):
    enc = make(name, kwargs)
    enc(RANDOM_POINTS)
    tables = {"tile": 1, "gridcell_hash": kwargs.get("grid_levels")}
    assert len(enc.trainable_weights) == tables.get(name, 0)
    # geoclip's Fourier matrices are weights (GeoCLIP's checkpoint holds them), never trained.
    assert len(enc.non_trainable_weights) == (1 if name == "geoclip" else 0)


def test_float64_input_keeps_precision():
    # lon 123.456789012 with f = 1e4 rad/°: float32 rounding of the input alone moves the angle ~0.04 rad.
    enc = lookup_encoder("gridcell")(frequency_num=2, min_radius=1e-4, max_radius=1.0)
    lon = 123.456789012
    out = enc(tf.constant([[lon, 0.0]], tf.float64)).numpy()[0]
    assert out[0] == pytest.approx(math.sin(lon * 1e4), abs=1e-6)
