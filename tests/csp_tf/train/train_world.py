"""The toy world of the training tests, in a module of its own name: the two-process job
(multiworker_job.py) imports it too, and the name ``conftest`` is ambiguous in a full run."""

import numpy as np


def toy_world(n=512, classes=4, feature_dim=8, seed=0):
    """Classes live in four lon/lat quadrants; image features are class prototypes + noise,
    so location and image agree and a contrastive loss has something to learn."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, n)
    centers = np.array([[-100, 40], [60, 30], [-60, -20], [120, -30]], np.float32)[label % 4]
    lon_lat = (centers + rng.normal(scale=8, size=(n, 2))).astype(np.float32)
    protos = rng.normal(size=(classes, feature_dim)).astype(np.float32) * 3
    feats = protos[label] + rng.normal(size=(n, feature_dim)).astype(np.float32)
    return {"lon_lat": lon_lat, "image_features": feats, "label": label.astype(np.int64)}
