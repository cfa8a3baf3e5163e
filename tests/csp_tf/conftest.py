"""Fixtures shared by the library's tests."""

import pytest

from csp_tf.configs import get_preset


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
