import numpy as np
import pytest

from csp_tf.configs import get_preset


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


@pytest.fixture
def world():
    return toy_world()


@pytest.fixture
def tiny_config():
    cfg = get_preset("demo")
    cfg.data.num_classes, cfg.data.feature_dim = 4, 8
    cfg.location_encoder.hidden_dim, cfg.location_encoder.num_filts = 32, 16
    cfg.location_encoder.position.frequency_num = 8
    cfg.pretrain.epochs, cfg.pretrain.batch_size = 3, 64
    cfg.finetune.epochs, cfg.finetune.batch_size = 2, 64
    cfg.finetune.image_classifier_epochs = 2
    cfg.finetune.min_steps, cfg.finetune.image_classifier_steps = 0, 50
    cfg.runtime.progress = False
    cfg.runtime.jit_compile = "off"
    return cfg
