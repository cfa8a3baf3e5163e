"""runtime.mixed_precision='bfloat16': bf16 matmuls, float32 position features and
losses, and a pre-training loss curve and downstream top-1 within noise of float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import ConfigError
from csp_tf.train import finetune, from_arrays, pretrain


def _pretrain_then_finetune(cfg, world, out):
    pre = pretrain(cfg, from_arrays(world, 64, seed=0), str(out / "pre"))
    cfg.finetune.epochs, cfg.finetune.lr = 6, 3e-3
    ft = finetune(cfg, from_arrays(world, 64, sampler="balanced"), from_arrays(world, 64),
                  str(out / "ft"), base_model_dir=str(out / "pre"))
    return pre, ft


def test_bfloat16_policy_dtypes(tiny_config, world, tmp_path):
    tiny_config.pretrain.epochs = 1
    tiny_config.runtime.mixed_precision = "bfloat16"
    try:
        r = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
        enc = r.model.location_encoder
        assert enc.network.linears[0].compute_dtype == "bfloat16"
        assert enc.network.linears[0].kernel.dtype == "float32"  # variables stay float32
        assert enc.position_encoder(tf.constant([[10.0, 20.0]])).dtype == tf.float32
        # the class logits stay float32 (a bf16 softmax over C classes cost top-1)
        assert r.model.class_head.compute_dtype == "float32"
        assert r.model.location_logits(tf.constant([[10.0, 20.0]])).dtype == tf.float32
        assert np.isfinite(r.history[-1]["loss"])
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_unknown_precision_is_a_config_error(tiny_config):
    tiny_config.runtime.mixed_precision = "bf17"
    with pytest.raises(ConfigError):
        tiny_config.validate()


def test_bfloat16_loss_curve_and_top1_within_noise_of_float32(tiny_config, world, tmp_path):
    from csp_tf.evaluate import evaluate_model
    import copy
    cfg32, cfg16 = copy.deepcopy(tiny_config), copy.deepcopy(tiny_config)
    cfg16.runtime.mixed_precision = "bfloat16"
    pre32, ft32 = _pretrain_then_finetune(cfg32, world, tmp_path / "fp32")
    try:
        pre16, ft16 = _pretrain_then_finetune(cfg16, world, tmp_path / "bf16")
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    l32 = np.array([h["loss"] for h in pre32.history])
    l16 = np.array([h["loss"] for h in pre16.history])
    # bf16 has an 8-bit mantissa (~0.4 % per rounding): the curves agree to a few per cent.
    np.testing.assert_allclose(l16, l32, rtol=0.03)
    assert l16[-1] < l16[0]
    top32 = evaluate_model(ft32.model, world)["location"]["top1"]
    top16 = evaluate_model(ft16.model, world)["location"]["top1"]
    assert abs(top16 - top32) <= 5.0, (top32, top16)


def test_bfloat16_fullbatch_probe_and_calibrated_fusion(tiny_config, world, tmp_path):
    """The fine-tuning stage's post-fit under mixed_bfloat16: the full-batch image probe (its
    loss mixed a bf16 cross-entropy with a float32 L2 term) and the val-calibrated fusion."""
    tiny_config.runtime.mixed_precision = "bfloat16"
    tiny_config.finetune.epochs, tiny_config.finetune.fusion = 1, "calibrated"
    tiny_config.finetune.image_classifier_solver = "fullbatch"
    tiny_config.finetune.image_classifier_steps = 20
    try:
        r = finetune(tiny_config, from_arrays(world, 64), from_arrays(world, 64), str(tmp_path),
                     image_arrays=world, validation=world)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    stages = [h.get("stage") for h in r.history]
    assert "image_probe" in stages and "fusion" in stages, r.history
