"""The one config object: presets carry SPEC §10 values; round trips; clear errors."""

import pytest

from csp_tf.configs import ConfigError, ExperimentConfig, get_preset


def test_inat2018_preset_carries_the_script_values():
    c = get_preset("inat2018")
    pe = c.location_encoder.position
    assert (pe.type, pe.frequency_num, pe.min_radius, pe.max_radius) == ("gridcell", 32, 0.1, 360.0)
    assert c.location_encoder.activation == "leakyrelu" and c.location_encoder.num_filts == 256
    p = c.pretrain
    assert (p.loss, p.lr, p.epochs, p.temp_inbatch, p.simcse_weight, p.neg_rand_type) == (
        "contsoftmax", 5e-4, 30, 20.0, 1.0, "sphericalold")
    f = c.finetune
    assert (f.lr, f.lr_decay, f.epochs, f.label_ratio) == (1e-3, 0.98, 200, 0.05)


def test_fmow_presets():
    c = get_preset("fmow")
    assert c.location_encoder.activation == "gelu" and c.pretrain.lr == 5e-5 and c.pretrain.epochs == 300
    r = get_preset("fmow_released")
    assert r.pretrain.simcse_weight == 0.1 and r.pretrain.temp_inbatch == 1.0


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_load_round_trip(tmp_path, suffix):
    c = get_preset("inat2018").override({"pretrain.lr": 1e-4, "location_encoder.position.type": "theory"})
    path = str(tmp_path / f"c{suffix}")
    c.save(path)
    assert ExperimentConfig.load(path) == c


@pytest.mark.parametrize("overrides,needle", [
    ({"location_encoder.position.type": "hexgrid"}, "location_encoder.position.type='hexgrid'"),
    ({"pretrain.temp_inbatch": 0}, "pretrain.temp_inbatch=0"),
    ({"finetune.label_ratio": 1.5}, "finetune.label_ratio=1.5"),
    ({"location_encoder.position.min_radius": 500.0}, "min_radius=500.0 exceeds"),
    ({"pretrain.neg_rand_type": "sphere"}, "pretrain.neg_rand_type='sphere'"),
    ({"runtime.jit_compile": "maybe"}, "runtime.jit_compile='maybe'"),
])
def test_validate_names_field_and_value(overrides, needle):
    with pytest.raises(ConfigError) as e:
        get_preset("inat2018").override(overrides).validate()
    assert needle in str(e.value)


def test_unknown_keys_and_bad_types_raise():
    with pytest.raises(ConfigError, match="unknown config key 'pretrain.learning_rate'"):
        get_preset("demo").override({"pretrain.learning_rate": 1})
    with pytest.raises(ConfigError, match="pretrain.epochs='many'"):
        ExperimentConfig.from_dict({"pretrain": {"epochs": "many"}})


def test_yaml_on_off_reads_as_the_string_choice():
    c = get_preset("demo").override({"runtime.jit_compile": True, "runtime.mixed_precision": False})
    assert (c.runtime.jit_compile, c.runtime.mixed_precision) == ("on", "off")
