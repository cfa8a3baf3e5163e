"""``rbf``: Gaussian kernels around M anchor locations, in degrees (docs/reference.md §2.8)."""

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

    (..., 2) lon/lat degrees -> (..., M). ``anchor_pts``: the (M, 2) anchors in degrees. When
    absent, ``anchors='uniform'`` draws M points area-uniformly on the sphere from ``seed``
    (``uniform_sphere_anchor_pts``); ``anchors='data'`` (the reference) needs them sampled from
    the training locations first (``sample_rbf_anchor_pts``; the CLI does it from the data
    root). Unlike the reference ([QUIRK], anchors not saved), the anchors are saved in the
    config, so a reloaded model is the same function. The distance is planar in degrees, so the
    features are not periodic across the dateline.
    """

    config_keys = ("num_rbf_anchor_pts", "rbf_kernel_size", "anchors", "seed", "anchor_pts")

    def __init__(self, num_rbf_anchor_pts: Optional[int] = None, rbf_kernel_size: float = 1.0,
                 anchors: str = "uniform", seed: int = 0, anchor_pts=None, **kwargs):
        super().__init__(**kwargs)
        self.seed, self.anchors = int(seed), anchors
        self.rbf_kernel_size = float(rbf_kernel_size)
        if anchor_pts is None and anchors == "data":
            raise ValueError("rbf anchors='data' needs anchor_pts sampled from the training "
                             "locations (sample_rbf_anchor_pts; csp_tf.train.DataRoot.configure "
                             "does it from a data root), or set anchors='uniform'")
        if anchor_pts is None:
            anchor_pts = uniform_sphere_anchor_pts(num_rbf_anchor_pts or DEFAULT_NUM_ANCHORS, self.seed)
        anchor_pts = np.asarray(anchor_pts, np.float64).reshape(-1, 2)
        if num_rbf_anchor_pts is not None and int(num_rbf_anchor_pts) != len(anchor_pts):
            raise ValueError(f"num_rbf_anchor_pts={num_rbf_anchor_pts} but {len(anchor_pts)} anchors given")
        if not np.all(np.isfinite(anchor_pts)):
            raise ValueError("rbf anchors must be finite (lon, lat) degrees")
        self.num_rbf_anchor_pts = len(anchor_pts)
        self.anchor_pts = anchor_pts.tolist()
        self._anchors = tf.constant(anchor_pts)

    @property
    def embedding_dim(self) -> int:
        return self.num_rbf_anchor_pts

    def _encode(self, lonlat):
        diff = lonlat[..., None, :] - self._anchors  # (..., M, 2)
        sq_dist = tf.reduce_sum(tf.square(diff), axis=-1)
        return tf.exp(-sq_dist / (2.0 * self.rbf_kernel_size ** 2))
