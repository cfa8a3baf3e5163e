"""gridcell_hash: gridcell sinusoids + a multiresolution grid of trainable tables
(docs/reference.md §13.4.1): layout, exact corners, continuity, hashing, gradients, seeds,
XLA, the config, capacity=auto and the model round trips."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf import capacity
from csp_tf.configs import ExperimentConfig, get_preset
from csp_tf.encoders.gridcell import GridCellEncoder
from csp_tf.encoders.gridcell_hash import HASH_PRIME, GridCellHashEncoder, build_levels
from csp_tf.models import build_csp_model

SCHEDULE = dict(frequency_num=3, min_radius=0.5, max_radius=360.0)
# Cell sizes 10° and 5° (360/10, 180/5 exact): dense tables of 36·19 and 72·37 rows.
COARSE = dict(SCHEDULE, grid_levels=2, grid_coarsest=10.0, grid_finest=5.0, grid_features=3)
RNG = np.random.default_rng(0)
POINTS = np.stack([RNG.uniform(-180, 180, 32), RNG.uniform(-90, 90, 32)], 1)


def _randomise(enc, seed=1):
    for i, table in enumerate(enc.tables):
        table.assign(tf.random.stateless_uniform(table.shape, [seed, i], -1.0, 1.0))


def _built(**kwargs):
    enc = GridCellHashEncoder(**kwargs)
    enc.build((None, 2))
    return enc


def test_levels_and_output_layout():
    levels = build_levels(8, 2.0, 0.05, 18)
    assert [l.cell_size for l in (levels[0], levels[-1])] == [2.0, 0.05]
    assert (levels[0].num_cols, levels[0].num_rows, levels[0].dense) == (180, 91, True)
    assert (levels[-1].num_cols, levels[-1].num_rows) == (7200, 3601)
    assert not levels[-1].dense and levels[-1].table_rows == 2 ** 18
    ratios = [a.cell_size / b.cell_size for a, b in zip(levels, levels[1:])]
    np.testing.assert_allclose(ratios, ratios[0])  # geometric
    # A cell size that does not divide 360 gets the next narrower column that does.
    assert build_levels(1, 0.7, 0.7, 18)[0].num_cols == 515
    enc = GridCellHashEncoder(**SCHEDULE)  # grid defaults: 8 levels of 4 features
    assert enc.embedding_dim == 4 * 3 + 8 * 4
    assert enc(POINTS.astype(np.float32)).shape == (32, 44)
    assert [tuple(t.shape) for t in enc.tables] == [(l.table_rows, 4) for l in enc.levels]


def test_first_columns_are_gridcell_exactly():
    enc = _built(**COARSE)
    _randomise(enc)
    gridcell = GridCellEncoder(**SCHEDULE)
    for pts in (POINTS, POINTS.astype(np.float32)):
        np.testing.assert_array_equal(enc(pts).numpy()[:, :12], gridcell(pts).numpy())


def test_cell_corners_hit_their_table_row_exactly():
    enc = _built(**COARSE)
    _randomise(enc)
    # (lon, lat) = (-170, 0) is the corner (col 1, row 9) at 10°, (col 2, row 18) at 5°.
    pt = tf.constant([[-170.0, 0.0]], tf.float64)
    (idx10, w10), (idx5, w5) = enc.corners(pt)
    assert idx10.numpy()[0, 0] == 9 * 36 + 1 and idx5.numpy()[0, 0] == 18 * 72 + 2
    np.testing.assert_array_equal(w10.numpy()[0], [1, 0, 0, 0])
    grid = enc(pt).numpy()[0, 12:]
    np.testing.assert_array_equal(grid[:3], enc.tables[0].numpy()[9 * 36 + 1])
    np.testing.assert_array_equal(grid[3:], enc.tables[1].numpy()[18 * 72 + 2])
    # The north pole is the last corner row; +180 is column 0 again.
    idx, w = enc.corners(tf.constant([[180.0, 90.0]], tf.float64))[0]
    assert idx.numpy()[0, np.argmax(w.numpy()[0])] == 18 * 36


def test_bilinear_weights_by_hand():
    enc = _built(**COARSE)
    _randomise(enc)
    idx, w = enc.corners(tf.constant([[-177.5, -88.0]], tf.float64))[0]  # fx = 0.25, fy = 0.2
    assert idx.numpy()[0].tolist() == [0, 1, 36, 37]
    np.testing.assert_allclose(w.numpy()[0], [0.6, 0.2, 0.15, 0.05])
    t = enc.tables[0].numpy()
    want = 0.6 * t[0] + 0.2 * t[1] + 0.15 * t[36] + 0.05 * t[37]
    got = enc(tf.constant([[-177.5, -88.0]], tf.float64)).numpy()[0, 12:15]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_continuous_inside_and_across_the_dateline():
    enc = _built(**SCHEDULE, grid_coarsest=1.0, grid_finest=0.3, grid_levels=3)
    _randomise(enc)
    # Two points 1e-7° apart on either side of a cell edge (lon 10°, lat 45° at 1°).
    a = tf.constant([[10.0 - 5e-8, 20.3], [33.3, 45.0 + 5e-8]], tf.float64)
    b = a + tf.constant([[1e-7, 0.0], [0.0, -1e-7]], tf.float64)
    np.testing.assert_allclose(enc(a).numpy(), enc(b).numpy(), atol=1e-5)
    east = tf.constant([[179.9999999, lat] for lat in (-60.0, 0.0, 33.3)], tf.float64)
    west = east * tf.constant([-1.0, 1.0], tf.float64)
    got_e, got_w = enc(east).numpy()[:, 12:], enc(west).numpy()[:, 12:]
    np.testing.assert_allclose(got_e, got_w, atol=1e-5)
    assert np.abs(got_e).max() > 0.1  # the tables are not ~0, so the test can fail


def test_a_level_with_more_corners_than_the_table_is_hashed():
    enc = _built(**SCHEDULE, grid_levels=2, grid_coarsest=45.0, grid_finest=2.0,
                 grid_log2_table_size=6)  # 8·5 = 40 <= 64 corners; 180·91 > 64
    coarse, fine = enc.levels
    assert coarse.dense and coarse.table_rows == 40
    assert not fine.dense and fine.table_rows == 64 and enc.tables[1].shape == (64, 4)
    (_, _), (idx, _) = enc.corners(POINTS)
    idx = idx.numpy()
    assert idx.min() >= 0 and idx.max() < 64 and len(np.unique(idx)) > 16
    # The hash of the corner (col, row) of the point's cell.
    col = np.floor((POINTS[:, 0] + 180) / 2.0).astype(np.int64) % 180
    row = np.floor((POINTS[:, 1] + 90) / 2.0).astype(np.int64)
    np.testing.assert_array_equal(idx[:, 0], (col ^ (row * HASH_PRIME)) % 64)
    _randomise(enc)
    t = enc.tables[1].numpy()
    (_, _), (i1, w1) = enc.corners(POINTS[:1])
    want = (w1.numpy()[0, :, None] * t[i1.numpy()[0]]).sum(0)
    np.testing.assert_allclose(enc(POINTS[:1]).numpy()[0, 16:], want, rtol=1e-5, atol=1e-7)


def test_gradients_reach_only_the_gathered_rows():
    enc = _built(**COARSE)
    pt = tf.constant([[-177.5, -88.0]], tf.float64)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(enc(pt))
    grads = tape.gradient(loss, enc.tables)
    for g, (idx, w), table in zip(grads, enc.corners(pt), enc.tables):
        g = tf.convert_to_tensor(g).numpy()
        want = np.zeros(table.shape, np.float32)
        want[idx.numpy()[0]] = w.numpy()[0, :, None]
        np.testing.assert_allclose(g, want, rtol=1e-6)
        assert np.count_nonzero(np.abs(g).sum(1)) == 4


def test_seeded_tables():
    a, b, c = _built(**COARSE, seed=3), _built(**COARSE, seed=3), _built(**COARSE, seed=4)
    for ta, tb, tc in zip(a.tables, b.tables, c.tables):
        np.testing.assert_array_equal(ta.numpy(), tb.numpy())
        assert not np.allclose(ta.numpy(), tc.numpy())
        assert 0 < np.abs(ta.numpy()).max() <= 1e-4  # U(±grid_init)
    assert not np.allclose(a.tables[0].numpy()[:10], a.tables[1].numpy()[:10])  # seed + level


def test_xla_matches_eager():
    enc = _built(**SCHEDULE, grid_levels=3, grid_coarsest=4.0, grid_finest=0.5,
                 grid_log2_table_size=12)
    _randomise(enc)
    pts = tf.constant(np.concatenate([POINTS, [[180, 90], [-180, -90], [179.9999, 0.0]]]),
                      tf.float32)
    xla = tf.function(enc.__call__, jit_compile=True)(pts).numpy()
    np.testing.assert_allclose(xla, enc(pts).numpy(), atol=1e-5)


def test_invalid_options():
    for bad in (dict(grid_levels=0), dict(grid_features=0), dict(grid_finest=3.0),
                dict(grid_finest=0.0), dict(grid_log2_table_size=0), dict(grid_init=-1.0)):
        with pytest.raises(ValueError, match="grid_"):
            GridCellHashEncoder(**SCHEDULE, **bad)


# ----- through the config and the model -----------------------------------------------------
SMALL_GRID = {"location_encoder.position.type": "gridcell_hash",
              "location_encoder.position.gridcell_hash.frequency_num": 4,
              "location_encoder.position.gridcell_hash.grid_levels": 3,
              "location_encoder.position.gridcell_hash.grid_coarsest": 8.0,
              "location_encoder.position.gridcell_hash.grid_finest": 0.5,
              "location_encoder.position.gridcell_hash.grid_log2_table_size": 10,
              "data.num_classes": 3, "data.feature_dim": 8, "location_encoder.hidden_dim": 32,
              "location_encoder.num_filts": 16}
LL = tf.constant([[10.0, 20.0], [-120.5, -33.25], [179.0, 89.0], [0.3, -0.7]])


def _config():
    return get_preset("demo").override(SMALL_GRID).validate()


def _perturbed_model():
    m = build_csp_model(_config())
    pe = m.location_encoder.position_encoder
    assert isinstance(pe, GridCellHashEncoder) and pe.grid_levels == 3
    assert pe.levels[-1].table_rows == 1024 and not pe.levels[-1].dense
    _randomise(pe, seed=7)  # the saved tables differ from a fresh seeded init
    return m


def test_config_builds_the_encoder_and_round_trips():
    cfg = _config()
    assert cfg.location_encoder.position.grid_finest == 0.5
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    m = build_csp_model(cfg)
    assert m.location_encoder.network.input_dim == 4 * 4 + 3 * 4


def test_keras_file_round_trip(keras_round_trip):
    m = _perturbed_model()
    back = keras_round_trip(m, build_csp_model(_config()), LL)
    pe = back.location_encoder.position_encoder
    assert isinstance(pe, GridCellHashEncoder)
    for a, b in zip(pe.tables, m.location_encoder.position_encoder.tables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_saved_model_export_round_trip(tmp_path):
    from csp_tf.export import export_saved_model

    m = _perturbed_model()
    path = export_saved_model(m, str(tmp_path), config=_config(), class_names=["a", "b", "c"],
                              version=1, warmup=False)
    loaded = tf.saved_model.load(path)
    emb = loaded.signatures["location_embedding"](lon_lat=LL)["embedding"].numpy()
    np.testing.assert_allclose(emb, m.location_embedding(LL).numpy(), rtol=1e-5, atol=1e-6)


def test_training_checkpoint_holds_the_tables(tmp_path):
    m, fresh = _perturbed_model(), build_csp_model(_config())
    fresh.location_embedding(LL)
    path = tf.train.Checkpoint(model=m).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=fresh).read(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(fresh.location_embedding(LL).numpy(),
                                  m.location_embedding(LL).numpy())


def test_capacity_auto_sets_the_sinusoids_finest_scale():
    cfg = get_preset("places").override({"location_encoder.capacity": "auto",
                                         "location_encoder.position.type": "gridcell_hash"})
    lon_lat = np.stack([np.arange(50) * 0.05, np.zeros(50)], axis=1)  # 4 × 0.05° → 0.25°
    out = capacity.resolve_capacity(cfg, lon_lat).location_encoder.position
    assert out.type == "gridcell_hash" and out.min_radius == 0.25
    assert out.grid_finest == cfg.location_encoder.position.grid_finest  # the grid is its own
