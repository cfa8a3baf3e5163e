"""Training stages: loss falls, resume equals an uninterrupted run, XLA on ≡ off, artifacts."""

import os

import keras
import numpy as np
import pytest

from csp_tf.configs import ConfigError
from csp_tf.train import finetune, from_arrays, pretrain


def _weights(model):
    return [v.numpy() for v in model.location_encoder.weights]


def test_pretrain_loss_falls_and_artifacts_written(tiny_config, world, tmp_path):
    tiny_config.pretrain.epochs = 6
    tiny_config.pretrain.lr = 3e-3
    tiny_config.pretrain.temp_inbatch = 0.1  # a sharp softmax makes the toy signal visible fast
    r = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
    losses = [h["loss_inbatch"] for h in r.history]
    assert losses[-1] < losses[0] - 0.05, losses
    for name in ("config.yaml", "model.keras", "history.json", "checkpoints"):
        assert os.path.exists(tmp_path / name)
    assert os.listdir(tmp_path / "logs" / "pretrain")  # TensorBoard events


def test_resume_after_interruption_equals_uninterrupted(tiny_config, world, tmp_path):
    tiny_config.runtime.checkpoint_every_steps = 0
    full = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "full"))
    part = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "split"), max_steps=11)
    assert not part.completed  # stopped mid-epoch 2 (8 steps per epoch)
    resumed = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "split"))
    assert resumed.completed
    for a, b in zip(_weights(full.model), _weights(resumed.model)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # Epochs 1 and 3 ran whole in both runs; epoch 2's mean in the resumed run covers only
    # the steps after the resume.
    losses = lambda r: [h["loss"] for h in r.history]
    assert losses(full)[0::2] == pytest.approx(losses(resumed)[0::2], rel=1e-6)


def test_xla_on_equals_off(tiny_config, world, tmp_path):
    tiny_config.pretrain.epochs = 1
    off = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "off"))
    tiny_config.runtime.jit_compile = "on"
    on = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "on"))
    for a, b in zip(_weights(off.model), _weights(on.model)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("loss", ["contsoftmaxsym", "imgcontloss", "imgcontlossnolocneg",
                                  "imgcontlosssimcse", "l2regress"])
def test_every_pretrain_loss_trains(tiny_config, world, tmp_path, loss):
    tiny_config.pretrain.loss, tiny_config.pretrain.epochs = loss, 1
    tiny_config.pretrain.simcse_weight = 1.0
    r = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
    assert np.isfinite(r.history[-1]["loss"])


def test_mixed_precision_runs(tiny_config, world, tmp_path):
    tiny_config.pretrain.epochs = 1
    tiny_config.runtime.mixed_precision = "on"
    try:
        r = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
        assert np.isfinite(r.history[-1]["loss"])
        assert r.model.location_encoder.network.linears[0].compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_finetune_from_pretrained_loads_encoder_and_optimizer(tiny_config, world, tmp_path):
    pre = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    tiny_config.finetune.epochs = 0
    tiny_config.finetune.image_classifier_epochs = 0
    ft = finetune(tiny_config, from_arrays(world, 64, sampler="balanced"), from_arrays(world, 64),
                  str(tmp_path / "ft"), base_model_dir=str(tmp_path / "pre"))
    for a, b in zip(_weights(pre.model), _weights(ft.model)):
        np.testing.assert_array_equal(a, b)
    # The class head is not taken from the base (the base never trained it anyway).
    fresh = finetune(tiny_config, from_arrays(world, 64), from_arrays(world, 64), str(tmp_path / "fresh"))
    np.testing.assert_array_equal(ft.model.class_head.kernel.numpy(), fresh.model.class_head.kernel.numpy())


def test_finetune_improves_location_accuracy(tiny_config, world, tmp_path):
    from csp_tf.evaluate import evaluate_model
    tiny_config.finetune.epochs, tiny_config.finetune.lr = 8, 3e-3
    ft = finetune(tiny_config, from_arrays(world, 64, sampler="balanced"), from_arrays(world, 64),
                  str(tmp_path))
    m = evaluate_model(ft.model, world)
    assert m["location"]["top1"] > 60  # four well-separated quadrants
    assert m["fused"]["top1"] >= m["image"]["top1"] - 5


def test_base_model_mismatch_is_a_clear_error(tiny_config, world, tmp_path):
    pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    tiny_config.location_encoder.num_filts = 24
    with pytest.raises(ConfigError, match="location_encoder config differs"):
        finetune(tiny_config, from_arrays(world, 64), from_arrays(world, 64), str(tmp_path / "ft"),
                 base_model_dir=str(tmp_path / "pre"))


def test_base_model_loads_when_only_an_unused_fcnet_dropout_differs(tiny_config, world, tmp_path):
    assert tiny_config.location_encoder.resolved_network() != "fcnet"
    pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    tiny_config.location_encoder.fcnet_dropout = 0.5 if tiny_config.location_encoder.fcnet_dropout != 0.5 else 0.0
    ft = finetune(tiny_config, from_arrays(world, 64), from_arrays(world, 64), str(tmp_path / "ft"),
                  base_model_dir=str(tmp_path / "pre"))
    assert ft.completed


def test_bad_inputs_fail_clearly(tiny_config, world, tmp_path):
    bad = dict(world, lon_lat=world["lon_lat"].copy())
    bad["lon_lat"][5, 1] = np.nan
    with pytest.raises(ValueError, match="row 5: lat=nan"):
        from_arrays(bad, 64)
    tiny_config.data.feature_dim = 9
    with pytest.raises(ValueError, match="width 8 but data.feature_dim=9"):
        pretrain(tiny_config, from_arrays(world, 64), str(tmp_path))


def test_base_encoder_loads_without_optimizer_state(tiny_config, world, tmp_path):
    """The checkpoint itself holds the encoder (not only the optimizer's variable list)."""
    pre = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    tiny_config.finetune.epochs = tiny_config.finetune.image_classifier_epochs = 0
    tiny_config.finetune.carry_optimizer_state = False
    ft = finetune(tiny_config, from_arrays(world, 64), from_arrays(world, 64), str(tmp_path / "ft"),
                  base_model_dir=str(tmp_path / "pre"))
    for a, b in zip(_weights(pre.model), _weights(ft.model)):
        np.testing.assert_array_equal(a, b)


def test_rerunning_a_finished_stage_keeps_its_history(tiny_config, world, tmp_path):
    import json
    tiny_config.pretrain.epochs = 1
    pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
    again = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
    assert len(again.history) == 1 and len(json.load(open(tmp_path / "history.json"))) == 1


@pytest.mark.parametrize("tf_config,chief", [
    (None, True),
    ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a", "b"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c"], "worker": ["a"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["c"], "worker": ["a"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_is_chief(monkeypatch, tf_config, chief):
    import json as _json
    from csp_tf.train.runtime import is_chief
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", _json.dumps(tf_config))
    assert is_chief() is chief


def test_a_non_chief_worker_leaves_the_shared_dir_and_the_chiefs_history_alone(
        tiny_config, world, tmp_path, monkeypatch):
    """Multi-worker runs share --out: a non-chief's epochs must not reach the chief's history
    (they did through history.partial.json, which the chief merged: 4 epochs for 2)."""
    import json
    from csp_tf.train import runtime

    tiny_config.pretrain.epochs = 2
    monkeypatch.setattr(runtime, "is_chief", lambda: False)
    worker = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
    assert len(worker.history) == 2
    assert not os.path.exists(tmp_path / "history.partial.json")
    monkeypatch.setattr(runtime, "is_chief", lambda: True)
    chief = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path))
    assert len(chief.history) == 2 and len(json.load(open(tmp_path / "history.json"))) == 2
