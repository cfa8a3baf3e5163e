"""``tile``: a trainable embedding per lon/lat grid cell (docs/reference.md §13.4, intended
design)."""

from __future__ import annotations

import math

import tensorflow as tf
import keras

from csp_tf.encoders.base import PositionEncoder, register_encoder

# 360/c can land a hair above an integer (360/0.3 = 1200.0000000000002); do not add a cell for it.
_CEIL_TOL = 1e-9


@register_encoder("tile")
class TileEncoder(PositionEncoder):
    """E[idx]: cell size c = ``tile_size`` degrees over (-180, 180, -90, 90).

    n_col = ⌈360/c⌉, n_row = ⌈180/c⌉, col = clip(⌊(lon+180)/c⌋, 0, n_col-1), row likewise with
    lat+90, idx = row·n_col + col. E: trainable (n_row·n_col, ``embedding_size``) table,
    initialised N(0, std = 1/embedding_size) from ``seed``. (..., 2) -> (..., embedding_size).
    This is the intended design; TorchSpatial's LocationEncoder drops the cell size, so every
    location lands in one cell there ([QUIRK], not reproduced). The table is a weight (saved
    with the model), piecewise constant, so the output is not continuous at cell edges or across
    the dateline.
    """

    config_keys = ("tile_size", "embedding_size", "seed")

    def __init__(self, tile_size: float = 1.0, embedding_size: int = 64, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not tile_size > 0:
            raise ValueError(f"tile_size={tile_size} must be > 0")
        self.tile_size = float(tile_size)
        self.embedding_size = int(embedding_size)
        self.seed = int(seed)
        self.num_cols = math.ceil(360.0 / self.tile_size - _CEIL_TOL)
        self.num_rows = math.ceil(180.0 / self.tile_size - _CEIL_TOL)
        self.table = None

    @property
    def embedding_dim(self) -> int:
        return self.embedding_size

    @property
    def num_cells(self) -> int:
        return self.num_rows * self.num_cols

    def build(self, input_shape=None):
        init = keras.initializers.RandomNormal(stddev=1.0 / self.embedding_size, seed=self.seed)
        self.table = self.add_weight(name="table", shape=(self.num_cells, self.embedding_size),
                                     initializer=init, trainable=True, dtype="float32")
        super().build(input_shape)

    def cell_index(self, lonlat) -> tf.Tensor:
        """int32 (...,) cell index of (..., 2) lon/lat degrees."""
        lonlat = tf.cast(lonlat, tf.float64)
        col = tf.floor((lonlat[..., 0] + 180.0) / self.tile_size)
        row = tf.floor((lonlat[..., 1] + 90.0) / self.tile_size)
        col = tf.cast(tf.clip_by_value(col, 0.0, self.num_cols - 1.0), tf.int32)
        row = tf.cast(tf.clip_by_value(row, 0.0, self.num_rows - 1.0), tf.int32)
        return row * self.num_cols + col

    def _encode(self, lonlat):
        return tf.gather(tf.convert_to_tensor(self.table), self.cell_index(lonlat))
