"""Fixtures shared by the library's tests."""

import os

import keras
import numpy as np
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


@pytest.fixture
def keras_round_trip(tmp_path):
    """``check(model, fresh, lon_lat)``: asserts ``model`` (weights changed) differs from
    ``fresh`` (the same config, initial weights), saves it as .keras, loads it back, asserts the
    same location embedding and returns the loaded model for the caller's own checks."""

    def check(model, fresh, lon_lat):
        before = model.location_embedding(lon_lat).numpy()
        assert not np.allclose(before, fresh.location_embedding(lon_lat).numpy(), atol=1e-4)
        path = os.path.join(tmp_path, "m.keras")
        model.save(path)
        back = keras.saving.load_model(path)
        np.testing.assert_array_equal(back.location_embedding(lon_lat).numpy(), before)
        return back

    return check
