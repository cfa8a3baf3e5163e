"""Linear probing before fine-tuning (finetune.head_init='probe'): the class head is fitted on the
frozen encoder, the encoder is untouched, and fine-tuning starts from the probe."""

import numpy as np
import pytest

from csp_tf.configs import ConfigError, get_preset
from csp_tf.train import finetune, from_arrays, pretrain
from csp_tf.train.head_probe import fit_head_on_frozen_encoder, frozen_embeddings


def _location_top1(model, arrays):
    logits = model.location_logits(arrays["lon_lat"]).numpy()
    return 100.0 * float(np.mean(np.argmax(logits, 1) == arrays["label"]))


def test_probe_fits_the_head_and_leaves_the_encoder_alone(tiny_config, world, tmp_path):
    pre = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    model = pre.model
    encoder = [v.numpy() for v in model.location_encoder.weights]
    before = _location_top1(model, world)
    train = {k: v[:256] for k, v in world.items()}
    val = {k: v[256:] for k, v in world.items()}
    entry = fit_head_on_frozen_encoder(model, tiny_config.finetune, train, val, seed=0)
    for a, v in zip(encoder, model.location_encoder.weights):
        np.testing.assert_array_equal(a, v.numpy())
    after = _location_top1(model, val)
    assert entry["stage"] == "head_probe" and entry["rows"] == 256
    assert entry["val_top1"] == pytest.approx(after)
    assert [g["l2"] for g in entry["grid"]] == [1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
    assert after > 80 and after > before + 20, (before, after)  # four well-separated quadrants


def test_frozen_embeddings_are_the_inference_embeddings(tiny_config, world):
    from csp_tf.models import build_csp_model

    tiny_config.location_encoder.dropout = 0.5
    model = build_csp_model(tiny_config)
    e = frozen_embeddings(model, world["lon_lat"])
    np.testing.assert_allclose(e, model.location_embedding(world["lon_lat"]).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(e, frozen_embeddings(model, world["lon_lat"]))  # no dropout


def test_finetune_starts_from_the_probe(tiny_config, world, tmp_path):
    pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    tiny_config.finetune.head_init = "probe"
    tiny_config.finetune.epochs = 0
    tiny_config.finetune.image_classifier_epochs = 0
    train = {k: v[:256] for k, v in world.items()}
    val = {k: v[256:] for k, v in world.items()}
    ft = finetune(tiny_config, from_arrays(train, 64), from_arrays(train, 64), str(tmp_path / "ft"),
                  base_model_dir=str(tmp_path / "pre"), head_arrays=train, validation=val)
    assert ft.history[0]["stage"] == "head_probe"
    assert _location_top1(ft.model, val) == pytest.approx(ft.history[0]["val_top1"])
    with pytest.raises(ValueError, match="head_arrays"):
        finetune(tiny_config, from_arrays(train, 64), from_arrays(train, 64),
                 str(tmp_path / "ft2"), base_model_dir=str(tmp_path / "pre"))


def test_stage_inputs_give_the_labeled_rows_and_val(tiny_config, tmp_path):
    from csp_tf.train.data_root import stage_inputs

    class Root:  # the two DataRoot calls stage_inputs makes for fine-tuning, nothing else
        feature_stats = None

        def labeled(self, split, ratio=None):
            n = 40 if split == "train" else 10
            return {"lon_lat": np.zeros((n, 2), np.float32), "label": np.zeros(n, np.int64),
                    "image_features": np.zeros((n, 8), np.float32)}

        def rows(self, split):
            return 10

    tiny_config.finetune.head_init = "probe"
    tiny_config.finetune.fusion, tiny_config.finetune.place_memory = "product", "off"
    tiny_config.finetune.image_classifier_solver = "minibatch"
    got = stage_inputs(tiny_config, Root(), "finetune")
    assert len(got["head_arrays"]["label"]) == 40 and len(got["validation"]["label"]) == 10
    tiny_config.finetune.head_init = "random"
    got = stage_inputs(tiny_config, Root(), "finetune")
    assert got["head_arrays"] is None and got["validation"] is None


def test_probe_needs_the_softmax_head():
    cfg = get_preset("demo")
    cfg.finetune.head_init, cfg.finetune.location_loss = "probe", "presence"
    cfg.finetune.place_memory = "off"
    with pytest.raises(ConfigError, match="head_init='probe'"):
        cfg.validate()
    cfg.finetune.head_init = "linear"
    with pytest.raises(ConfigError, match="head_init"):
        cfg.validate()


def test_a_frozen_encoder_keeps_its_weights(tiny_config, world, tmp_path):
    pre = pretrain(tiny_config, from_arrays(world, 64, seed=0), str(tmp_path / "pre"))
    encoder = [v.numpy() for v in pre.model.location_encoder.weights]
    train = {k: v[:256] for k, v in world.items()}
    val = {k: v[256:] for k, v in world.items()}
    tiny_config.finetune.freeze_encoder = True
    ft = finetune(tiny_config, from_arrays(train, 64), from_arrays(train, 64), str(tmp_path / "sgd"),
                  base_model_dir=str(tmp_path / "pre"), validation=val)
    for a, v in zip(encoder, ft.model.location_encoder.weights):
        np.testing.assert_array_equal(a, v.numpy())
    assert sum(h.get("stage") is None and "loss" in h for h in ft.history) == 2  # the head's epochs
    tiny_config.finetune.head_init = "probe"  # the probe is the head: no gradient steps
    ft = finetune(tiny_config, from_arrays(train, 64), from_arrays(train, 64), str(tmp_path / "lp"),
                  base_model_dir=str(tmp_path / "pre"), head_arrays=train, validation=val)
    for a, v in zip(encoder, ft.model.location_encoder.weights):
        np.testing.assert_array_equal(a, v.numpy())
    assert not any(h.get("stage") is None and "loss" in h for h in ft.history)
    assert _location_top1(ft.model, val) == pytest.approx(ft.history[0]["val_top1"])
