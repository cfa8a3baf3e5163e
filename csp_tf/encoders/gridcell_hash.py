"""``gridcell_hash``: the ``gridcell`` sinusoids, then a multiresolution grid of trainable feature
tables (Müller et al. 2022's hash encoding on lon/lat degrees; docs/reference.md §13.4.1).

The sinusoids are smooth at every scale the frequency list holds; the tables let the network
draw structure as small as a grid cell (a coast, a border) that a smooth sinusoid network cannot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
import tensorflow as tf
import keras

from csp_tf.encoders.base import register_encoder
from csp_tf.encoders.gridcell import GridCellEncoder

# Instant-NGP's spatial hash: x·1 XOR y·2654435761, modulo the table size.
HASH_PRIME = 2654435761
# 360/r can land a hair above an integer (360/0.3 = 1200.0000000000002); do not add a cell for it.
_CEIL_TOL = 1e-9
MAX_LOG2_TABLE_SIZE = 30


@dataclass(frozen=True)
class GridLevel:
    """One resolution: corner columns around a parallel (wrapping at the dateline) and corner
    rows from the south to the north pole, both inclusive."""

    cell_size: float  # nominal cell size r, degrees (the latitude step)
    num_cols: int     # ⌈360/r⌉; columns 360/num_cols ≤ r wide, so they close around the globe
    num_rows: int     # ⌈180/r⌉ + 1
    table_rows: int   # num_cols·num_rows where that fits (dense), else the hash table size

    @property
    def num_corners(self) -> int:
        return self.num_cols * self.num_rows

    @property
    def dense(self) -> bool:
        return self.num_corners <= self.table_rows

    @property
    def col_width(self) -> float:
        return 360.0 / self.num_cols


def build_levels(levels: int, coarsest: float, finest: float,
                 log2_table_size: int) -> List[GridLevel]:
    """Cell sizes geometric from ``coarsest`` to ``finest`` degrees; a level with more corners
    than 2**log2_table_size is hashed into a table of that many rows."""
    table = 2 ** log2_table_size
    out = []
    for r in np.geomspace(coarsest, finest, levels):
        r = float(r)
        cols = math.ceil(360.0 / r - _CEIL_TOL)
        rows = math.ceil(180.0 / r - _CEIL_TOL) + 1
        out.append(GridLevel(r, cols, rows, min(cols * rows, table)))
    return out


@register_encoder("gridcell_hash")
class GridCellHashEncoder(GridCellEncoder):
    """[gridcell(lon, lat), grid_0, …, grid_{L-1}]: (..., 2) -> (..., 4·frequency_num + L·F).

    grid_l is the bilinear interpolation of a trainable (rows, F) table at the four corners of
    the level-l cell around the point: x = (lon+180)/(360/n_col), y = (lat+90)/r_l, corner
    column wrapped modulo n_col (continuous across the dateline), corner row clipped to the poles.
    A level whose n_col·n_row corners fit in T = 2**``grid_log2_table_size`` rows indexes its
    table densely (row·n_col + col); a finer one hashes (col XOR row·2654435761) mod T, so
    distant corners may share a row. Tables start U(±``grid_init``) from ``seed`` + level and are
    weights, saved with the model. Indices and weights come from float64 degrees; the gather and
    the weighted sum are float32.
    """

    config_keys = GridCellEncoder.config_keys + (
        "grid_levels", "grid_coarsest", "grid_finest", "grid_features", "grid_log2_table_size",
        "grid_init")

    def __init__(self, grid_levels: int = 8, grid_coarsest: float = 2.0, grid_finest: float = 0.05,
                 grid_features: int = 4, grid_log2_table_size: int = 18, grid_init: float = 1e-4,
                 **kwargs):
        super().__init__(**kwargs)
        self.grid_levels = int(grid_levels)
        self.grid_coarsest, self.grid_finest = float(grid_coarsest), float(grid_finest)
        self.grid_features = int(grid_features)
        self.grid_log2_table_size = int(grid_log2_table_size)
        self.grid_init = float(grid_init)
        if self.grid_levels < 1 or self.grid_features < 1:
            raise ValueError(f"grid_levels={grid_levels} and grid_features={grid_features} "
                             "must be >= 1")
        if not (0 < self.grid_finest <= self.grid_coarsest < math.inf):
            raise ValueError(f"need 0 < grid_finest={grid_finest} <= grid_coarsest={grid_coarsest}")
        if not 1 <= self.grid_log2_table_size <= MAX_LOG2_TABLE_SIZE:
            raise ValueError(f"grid_log2_table_size={grid_log2_table_size} must be in "
                             f"[1, {MAX_LOG2_TABLE_SIZE}]")
        if not 0 <= self.grid_init < math.inf:
            raise ValueError(f"grid_init={grid_init} must be a finite number >= 0")
        self.levels = build_levels(self.grid_levels, self.grid_coarsest, self.grid_finest,
                                   self.grid_log2_table_size)

    @property
    def sincos_dim(self) -> int:
        return 4 * self.frequency_num

    @property
    def embedding_dim(self) -> int:
        return self.sincos_dim + self.grid_levels * self.grid_features

    @property
    def tables(self) -> List[keras.Variable]:
        return [getattr(self, f"table_{i}") for i in range(self.grid_levels)]

    def build(self, input_shape=None):
        # One attribute per table (not a list), as the FFN's sub-layers: every checkpoint sees it.
        for i, level in enumerate(self.levels):
            init = keras.initializers.RandomUniform(-self.grid_init, self.grid_init,
                                                    seed=self.seed + i)
            setattr(self, f"table_{i}", self.add_weight(
                name=f"table_{i}", shape=(level.table_rows, self.grid_features),
                initializer=init, trainable=True, dtype="float32"))
        super().build(input_shape)

    def corners(self, lonlat) -> List[Tuple[tf.Tensor, tf.Tensor]]:
        """Per level: int64 (..., 4) table rows and float64 (..., 4) bilinear weights of the
        corners (col, row), (col+1, row), (col, row+1), (col+1, row+1) of each point's cell."""
        lonlat = tf.cast(lonlat, tf.float64)
        out = []
        for level in self.levels:
            # Wrap and clip in float first, so every cast below is of an in-range value.
            x = tf.math.floormod((lonlat[..., 0] + 180.0) / level.col_width, level.num_cols)
            y = tf.clip_by_value((lonlat[..., 1] + 90.0) / level.cell_size, 0.0,
                                 level.num_rows - 1.0)
            x0, y0 = tf.floor(x), tf.floor(y)
            fx, fy = x - x0, y - y0
            col0, row0 = tf.cast(x0, tf.int64), tf.cast(y0, tf.int64)
            # x may round up to num_cols itself: the modulo maps that corner to column 0.
            col0, col1 = col0 % level.num_cols, (col0 + 1) % level.num_cols
            row1 = tf.minimum(row0 + 1, level.num_rows - 1)
            cols = tf.stack([col0, col1, col0, col1], -1)
            rows = tf.stack([row0, row0, row1, row1], -1)
            weights = tf.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
            if level.dense:
                idx = rows * level.num_cols + cols
            else:
                idx = tf.math.floormod(tf.bitwise.bitwise_xor(cols, rows * HASH_PRIME),
                                       level.table_rows)
            out.append((idx, weights))
        return out

    def grid_features_of(self, lonlat) -> tf.Tensor:
        """float32 (..., grid_levels·grid_features): the interpolated tables, level after level."""
        feats = []
        for table, (idx, weights) in zip(self.tables, self.corners(lonlat)):
            rows = tf.gather(tf.convert_to_tensor(table), idx)  # (..., 4, F)
            feats.append(tf.reduce_sum(rows * tf.cast(weights, tf.float32)[..., None], axis=-2))
        return tf.concat(feats, -1)

    def _encode(self, lonlat):
        # The sinusoids in float64 (as gridcell), cast; the tables are float32 throughout.
        sincos = tf.cast(super()._encode(lonlat), tf.float32)
        return tf.concat([sincos, self.grid_features_of(lonlat)], -1)
