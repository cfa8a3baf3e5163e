"""Method recipes and the grid parsers (no training)."""

from __future__ import annotations

import pytest

from csp_tf.configs import ConfigError, get_preset
from csp_tf.experiments.methods import (DEFAULT_METHODS, METHODS, config_fingerprint, get_method,
                                        method_config, parse_methods, parse_ratios, parse_seeds)


def test_defaults_cover_the_issue_methods():
    assert parse_methods(None) == [METHODS[m] for m in DEFAULT_METHODS]
    assert parse_ratios(None) == [0.05, 0.1, 0.2, 1.0]
    assert parse_seeds("") == [0, 1, 2]


@pytest.mark.parametrize("name,encoder,network,loss", [
    ("sup_wrap", "wrap", "fcnet", "none"), ("sup_grid", "gridcell", "ffn", "none"),
    ("sup_theory", "theory", "ffn", "none"), ("sup_spherem_plus", "sphereM+", "ffn", "none"),
    ("mse", "gridcell", "ffn", "l2regress"), ("nce", "gridcell", "ffn", "imgcontloss"),
    ("csp", "gridcell", "ffn", "contsoftmax")])
def test_method_config_sets_encoder_network_and_loss(name, encoder, network, loss):
    cfg = method_config(get_preset("demo"), get_method(name), seed=2, ratio=0.1)
    assert cfg.location_encoder.position.type == encoder
    assert cfg.location_encoder.network == network
    assert cfg.pretrain.loss == loss
    assert cfg.runtime.seed == 2 and cfg.finetune.label_ratio == 0.1


def test_img_only_trains_no_location_model_and_variants_override():
    assert method_config(get_preset("demo"), get_method("img_only"), 0, 0.05).finetune.epochs == 0
    mult = method_config(get_preset("demo"), get_method("csp_multiply"), 0)
    assert mult.pretrain.temperature_mode == "multiply"
    assert method_config(get_preset("demo"), get_method("csp_tau1"), 0).pretrain.temp_inbatch == 1.0


def test_fingerprint_ignores_where_the_data_lives():
    a, b = get_preset("demo"), get_preset("demo")
    b.data.data_root, b.runtime.progress = "/elsewhere", False
    assert config_fingerprint(a) == config_fingerprint(b)
    b.finetune.epochs += 1
    assert config_fingerprint(a) != config_fingerprint(b)


def test_fingerprint_keeps_fcnet_dropout_only_for_an_fcnet():
    """A gridcell stage trained before ``fcnet_dropout`` changed stays reusable; a wrap stage not."""
    grid = [method_config(get_preset("places"), get_method("csp"), 0) for _ in range(2)]
    wrap = [method_config(get_preset("places"), get_method("sup_wrap"), 0, 0.05) for _ in range(2)]
    for a, b in (grid, wrap):
        b.location_encoder.fcnet_dropout = 0.5 if a.location_encoder.fcnet_dropout != 0.5 else 0.0
    assert config_fingerprint(grid[0]) == config_fingerprint(grid[1])
    assert config_fingerprint(wrap[0]) != config_fingerprint(wrap[1])


@pytest.mark.parametrize("fn,text", [(parse_methods, "csp,nope"), (parse_methods, "csp,csp"),
                                     (parse_ratios, "0.05,1.5"), (parse_ratios, "a"),
                                     (parse_ratios, "0"), (parse_seeds, "0,x"), (parse_seeds, "1,1")])
def test_bad_grid_arguments_raise(fn, text):
    with pytest.raises(ConfigError):
        fn(text)


def test_an_option_at_its_neutral_value_keeps_earlier_fingerprints():
    """Adding a fine-tuning option whose default does what configs did before must not orphan
    the results made before it: these hashes are those of the presets before head_init,
    freeze_encoder and location_jitter existed."""
    from csp_tf.configs import get_preset
    from csp_tf.experiments.protocol import fingerprint_hash

    assert fingerprint_hash(get_preset("demo")) == "ea40cc4718db"
    assert fingerprint_hash(get_preset("places")) == "af4d728e4acc"
    probe = get_preset("places")
    probe.finetune.head_init = "probe"
    assert fingerprint_hash(probe) != "af4d728e4acc"
    finer = get_preset("places")
    finer.finetune.head_probe_l2_grid = "1e-3"  # acts only through the probe
    assert fingerprint_hash(finer) == "af4d728e4acc"
    probe_finer = get_preset("places")
    probe_finer.finetune.head_init, probe_finer.finetune.head_probe_l2_grid = "probe", "1e-3"
    assert fingerprint_hash(probe_finer) != fingerprint_hash(probe)
    frozen = get_preset("places")
    frozen.finetune.freeze_encoder = True
    assert fingerprint_hash(frozen) != "af4d728e4acc"
    jittered = get_preset("places")
    jittered.finetune.location_jitter = 0.03
    assert fingerprint_hash(jittered) != "af4d728e4acc"
