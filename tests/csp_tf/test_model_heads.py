"""Location heads (reference sigmoid vs natural softmax) and the calibrated fusion in CSPModel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import ConfigError, get_preset
from csp_tf.models import build_csp_model
from csp_tf.models.csp_model import fuse_calibrated


def _model(preset="demo", c=5, f=8):
    cfg = get_preset(preset)
    cfg.data.num_classes, cfg.data.feature_dim = c, f
    return build_csp_model(cfg), cfg


def test_reference_presets_keep_the_sigmoid_head_and_product_fusion():
    m, cfg = _model("inat2018")
    assert m.location_head == "sigmoid" and m.fusion == "product" and m.class_head.bias is None
    assert (cfg.finetune.location_loss, cfg.finetune.sampler) == ("presence", "balanced")
    assert not cfg.data.standardize_features


def test_natural_head_is_a_softmax_with_bias():
    m, cfg = _model("demo")
    assert m.location_head == "softmax" and m.class_head.bias is not None
    p = m.location_probs(tf.constant([[10.0, 20.0], [-70.0, -30.0]])).numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)


def test_presets_take_shapes_from_the_data():
    cfg = get_preset("inat2018")
    assert (cfg.data.feature_dim, cfg.data.num_classes) == (0, 0)


def test_calibrated_fusion_is_bayes_rule_at_unit_weights():
    img = tf.constant([[0.6, 0.3, 0.1]])
    loc = tf.constant([[0.2, 0.5, 0.3]])
    prior = tf.math.log(tf.constant([0.5, 0.25, 0.25]))
    out = fuse_calibrated(img, loc, tf.constant([[0.0, 0.0]]), tf.constant([1.0, 1.0, 1.0]), prior)
    want = np.array([0.6 * 0.2 / 0.5, 0.3 * 0.5 / 0.25, 0.1 * 0.3 / 0.25])
    np.testing.assert_allclose(out.numpy()[0], want / want.sum(), rtol=1e-5)
    missing = fuse_calibrated(img, loc, tf.constant([[np.nan, np.nan]]), tf.constant([1.0, 1.0, 1.0]), prior)
    np.testing.assert_allclose(missing.numpy(), img.numpy())


def test_fusion_weights_and_prior_are_saved_in_the_keras_file(tmp_path):
    m, _ = _model("demo")
    m.fusion_weights.assign([0.5, 1.5, 1.0])
    m.log_prior.assign(np.log(np.full(5, 0.2, np.float32)) + np.arange(5, dtype=np.float32) * 0.01)
    x = tf.constant([[1.0, 2.0]]), tf.constant(np.ones((1, 8), np.float32))
    before = m.predict_all(*x)["probabilities"].numpy()
    m.save(str(tmp_path / "m.keras"))
    back = keras.saving.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_allclose(back.fusion_weights.numpy(), [0.5, 1.5, 1.0])
    np.testing.assert_allclose(back.predict_all(*x)["probabilities"].numpy(), before, rtol=1e-6)


@pytest.mark.parametrize("key,value,needle", [
    ("finetune.location_loss", "hinge", "finetune.location_loss='hinge'"),
    ("finetune.fusion", "sum", "finetune.fusion='sum'"),
    ("finetune.image_classifier_l2_grid", "a,b", "image_classifier_l2_grid"),
])
def test_new_finetune_options_are_validated(key, value, needle):
    with pytest.raises(ConfigError, match=needle):
        get_preset("demo").override({key: value}).validate()
