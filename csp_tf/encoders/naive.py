"""``naive``: the min-max normalised coordinates themselves (docs/reference.md §2.7)."""

from __future__ import annotations

from typing import Sequence

from csp_tf.encoders.base import (DEFAULT_MAP_RANGE, PositionEncoder, map_range_normalize,
                                  register_encoder)


@register_encoder("naive")
class NaiveEncoder(PositionEncoder):
    """(..., 2) lon/lat degrees -> (..., 2) = (lon/180, lat/90) for the default ``map_range``."""

    config_keys = ("map_range",)
    embedding_dim = 2

    def __init__(self, map_range: Sequence[float] = DEFAULT_MAP_RANGE, **kwargs):
        super().__init__(**kwargs)
        self.map_range = [float(v) for v in map_range]

    def _encode(self, lonlat):
        return map_range_normalize(lonlat, self.map_range)
