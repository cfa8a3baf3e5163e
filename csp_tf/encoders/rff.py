"""``rff``: random Fourier features of the min-max normalised coordinates (docs/reference.md
§2.9)."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from csp_tf.encoders.base import (DEFAULT_MAP_RANGE, PositionEncoder, map_range_normalize,
                                  register_encoder)

RFF_KERNEL_MODES = ("variance", "bandwidth")


@register_encoder("rff")
class RFFEncoder(PositionEncoder):
    """φ(x) = √(2/S)·cos(xᵀω + b), x = (lon/180, lat/90), ω ∈ R^{2×S}, b ~ U[0, 2π)^S.

    (..., 2) lon/lat degrees -> (..., frequency_num).
    ``rff_kernel_mode``: ``variance`` ([QUIRK], default) draws ω ~ N(0, k·I) with
    k = ``rbf_kernel_size`` used as the variance, as the reference does; ``bandwidth`` is
    the standard RFF of an RBF kernel of width σ = k: ω ~ N(0, σ^-2·I).
    ω and b are drawn (ω first) from ``seed`` and saved in the config, so a reloaded model is the
    same function; pass ``omega``/``bias`` to use given values (e.g. a reference checkpoint's).
    """

    config_keys = ("frequency_num", "rbf_kernel_size", "rff_kernel_mode", "map_range", "seed",
                   "omega", "bias")

    def __init__(self, frequency_num: int = 32, rbf_kernel_size: float = 1.0,
                 rff_kernel_mode: str = "variance", map_range: Sequence[float] = DEFAULT_MAP_RANGE,
                 seed: int = 0, omega: Optional[List[List[float]]] = None,
                 bias: Optional[List[float]] = None, **kwargs):
        super().__init__(**kwargs)
        if rff_kernel_mode not in RFF_KERNEL_MODES:
            raise ValueError(f"rff_kernel_mode={rff_kernel_mode!r} is not one of "
                             f"{', '.join(RFF_KERNEL_MODES)}")
        self.frequency_num = int(frequency_num)
        self.rbf_kernel_size = float(rbf_kernel_size)
        self.rff_kernel_mode = rff_kernel_mode
        self.map_range = [float(v) for v in map_range]
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        if omega is None:
            std = (math.sqrt(self.rbf_kernel_size) if rff_kernel_mode == "variance"
                   else 1.0 / self.rbf_kernel_size)
            omega = rng.normal(0.0, std, size=(2, self.frequency_num))
        if bias is None:
            bias = rng.uniform(0.0, 2.0 * math.pi, size=self.frequency_num)
        omega = np.asarray(omega, np.float64)
        bias = np.asarray(bias, np.float64)
        if omega.shape != (2, self.frequency_num) or bias.shape != (self.frequency_num,):
            raise ValueError(f"omega must be (2, {self.frequency_num}) and bias ({self.frequency_num},); "
                             f"got {omega.shape} and {bias.shape}")
        self.omega = omega.tolist()
        self.bias = bias.tolist()
        self._omega = tf.constant(omega)
        self._bias = tf.constant(bias)

    @property
    def embedding_dim(self) -> int:
        return self.frequency_num

    def _encode(self, lonlat):
        x = map_range_normalize(lonlat, self.map_range)
        # x_lon·ω_0 + x_lat·ω_1 written out: matmul needs rank-2 inputs.
        proj = x[..., 0:1] * self._omega[0] + x[..., 1:2] * self._omega[1] + self._bias
        return math.sqrt(2.0 / self.frequency_num) * tf.cos(proj)
