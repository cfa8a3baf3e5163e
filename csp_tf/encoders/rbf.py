"""``rbf``: Gaussian kernels around M anchor locations, in degrees (SPEC §2.8)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from csp_tf.encoders.base import PositionEncoder, register_encoder

DEFAULT_NUM_ANCHORS = 200


def sample_rbf_anchor_pts(locations, num_rbf_anchor_pts: int = DEFAULT_NUM_ANCHORS,
                          seed: int = 0) -> np.ndarray:
    """The reference ``Trainer.sample_rbf_anchor_pts``, seeded: M training locations (degrees)
    drawn uniformly without replacement after rows with a non-finite coordinate are removed."""
    locs = np.asarray(locations, np.float64).reshape(-1, 2)
    locs = locs[np.all(np.isfinite(locs), axis=1)]
    if len(locs) < num_rbf_anchor_pts:
        raise ValueError(f"need at least num_rbf_anchor_pts={num_rbf_anchor_pts} valid locations, "
                         f"got {len(locs)}")
    idx = np.random.default_rng(seed).choice(len(locs), num_rbf_anchor_pts, replace=False)
    return locs[idx]


def uniform_sphere_anchor_pts(num_rbf_anchor_pts: int = DEFAULT_NUM_ANCHORS,
                              seed: int = 0) -> np.ndarray:
    """M (lon, lat) points in degrees, uniform in area on the sphere: lon ~ U[-180, 180),
    lat = asin(U[-1, 1)). csp-tf's fallback when no training locations are given."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(-180.0, 180.0, num_rbf_anchor_pts)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, num_rbf_anchor_pts)))
    return np.stack([lon, lat], axis=1)


@register_encoder("rbf")
class RBFEncoder(PositionEncoder):
    """φ_m(x) = exp(-‖x - a_m‖² / (2σ²)), x and a_m in degrees, σ = ``rbf_kernel_size`` degrees.

    (..., 2) lon/lat degrees -> (..., M). ``anchors``: (M, 2) training locations in degrees
    (see ``sample_rbf_anchor_pts``); when absent, M points are drawn area-uniformly on the sphere
    from ``seed`` (``uniform_sphere_anchor_pts``). Unlike the reference ([QUIRK], anchors not
    saved), the anchors are saved in the config, so a reloaded model is the same function.
    The distance is planar in degrees, so the features are not periodic across the dateline.
    """

    def __init__(self, num_rbf_anchor_pts: Optional[int] = None, rbf_kernel_size: float = 1.0,
                 anchors=None, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.rbf_kernel_size = float(rbf_kernel_size)
        if anchors is None:
            anchors = uniform_sphere_anchor_pts(num_rbf_anchor_pts or DEFAULT_NUM_ANCHORS, self.seed)
        anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
        if num_rbf_anchor_pts is not None and int(num_rbf_anchor_pts) != len(anchors):
            raise ValueError(f"num_rbf_anchor_pts={num_rbf_anchor_pts} but {len(anchors)} anchors given")
        if not np.all(np.isfinite(anchors)):
            raise ValueError("rbf anchors must be finite (lon, lat) degrees")
        self.num_rbf_anchor_pts = len(anchors)
        self.anchors = anchors.tolist()
        self._anchors = tf.constant(anchors)

    @property
    def embedding_dim(self) -> int:
        return self.num_rbf_anchor_pts

    def _encode(self, lonlat):
        diff = lonlat[..., None, :] - self._anchors  # (..., M, 2)
        sq_dist = tf.reduce_sum(tf.square(diff), axis=-1)
        return tf.exp(-sq_dist / (2.0 * self.rbf_kernel_size ** 2))

    def get_config(self):
        config = super().get_config()
        config.update(num_rbf_anchor_pts=self.num_rbf_anchor_pts,
                      rbf_kernel_size=self.rbf_kernel_size, anchors=self.anchors, seed=self.seed)
        return config

    @classmethod
    def from_experiment_config(cls, cfg, anchors=None) -> "RBFEncoder":
        """``anchors``: optional (M, 2) training locations, e.g. from ``sample_rbf_anchor_pts``."""
        if anchors is not None:
            anchors = np.asarray(anchors, np.float64).reshape(-1, 2)
            return cls(num_rbf_anchor_pts=len(anchors), rbf_kernel_size=cfg.rbf_kernel_size,
                       anchors=anchors, seed=cfg.seed)
        return cls(num_rbf_anchor_pts=cfg.num_rbf_anchor_pts, rbf_kernel_size=cfg.rbf_kernel_size,
                   seed=cfg.seed)
