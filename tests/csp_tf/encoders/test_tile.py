"""tile: trainable per-cell table (docs/reference.md §13.4, intended design)."""

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.encoders.tile import TileEncoder


def test_cell_index_vectors():
    enc = TileEncoder(tile_size=45.0, embedding_size=4)
    assert (enc.num_cols, enc.num_rows) == (8, 4)
    pts = np.array([(0, 0), (90, 45), (-180, -90), (180, 90), (-120.5, -33.25)], np.float32)
    np.testing.assert_array_equal(enc.cell_index(pts).numpy(), [20, 30, 0, 31, 9])


def test_grid_size_rounding():
    enc = TileEncoder(tile_size=0.3, embedding_size=2)  # 360/0.3 = 1200.0000000000002
    assert (enc.num_cols, enc.num_rows) == (1200, 600)
    enc = TileEncoder(tile_size=50.0, embedding_size=2)  # partial last column and row
    assert (enc.num_cols, enc.num_rows) == (8, 4)
    with pytest.raises(ValueError, match="tile_size"):
        TileEncoder(tile_size=0.0)


def test_lookup_and_init(encode):
    enc = TileEncoder(tile_size=10.0, embedding_size=16, seed=2)
    got = encode(enc, [(0, 0), (90, 45), (-120.5, -33.25)])
    table = enc.table.numpy()
    assert table.shape == (36 * 18, 16) and enc.embedding_dim == 16
    assert np.std(table) == pytest.approx(1 / 16, rel=0.1)  # N(0, std = 1/D)
    idx = enc.cell_index(np.array([(0, 0), (90, 45), (-120.5, -33.25)])).numpy()
    np.testing.assert_array_equal(got, table[idx])
    assert len(enc.trainable_weights) == 1


def test_gradient_reaches_only_the_looked_up_rows():
    enc = TileEncoder(tile_size=45.0, embedding_size=3)
    pts = tf.constant([(0.0, 0.0)])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(enc(pts))
    grad = tf.convert_to_tensor(tape.gradient(loss, enc.table)).numpy()
    assert np.count_nonzero(np.abs(grad).sum(axis=1)) == 1 and grad[20].tolist() == [1, 1, 1]


def test_seeded_init():
    a, b = TileEncoder(tile_size=45.0, embedding_size=3, seed=5), TileEncoder(tile_size=45.0, embedding_size=3, seed=5)
    a.build((None, 2))
    b.build((None, 2))
    np.testing.assert_array_equal(a.table.numpy(), b.table.numpy())
