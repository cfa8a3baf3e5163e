"""The one config object: presets carry docs/reference.md §10 values; round trips; clear errors."""

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
    ({"location_encoder.position.type": "gridcell_hash",
      "location_encoder.position.gridcell_hash.grid_levels": 0},
     "location_encoder.position.gridcell_hash.grid_levels=0 must be"),
    ({"location_encoder.position.type": "gridcell_hash",
      "location_encoder.position.gridcell_hash.grid_init": -1.0},
     "location_encoder.position.gridcell_hash.grid_init=-1.0 must be"),
    ({"finetune.location_jitter": -0.5}, "finetune.location_jitter=-0.5 must be"),
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


# ----- the position encoder OneOf ----------------------------------------------------------------
import ast  # noqa: E402
import glob  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

import yaml  # noqa: E402

from csp_tf.configs import ENCODER_OPTIONS, PositionEncoderConfig  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# A value per option name that differs from every default, to see it land and round-trip.
NON_DEFAULT = {"frequency_num": 7, "min_radius": 0.25, "max_radius": 90.0, "freq_init": "random",
               "seed": 11, "frequencies": [1.0, 0.5], "map_range": [-90.0, 90.0, -45.0, 45.0],
               "num_rbf_anchor_pts": 2, "rbf_kernel_size": 3.5, "anchors": "uniform",
               "anchor_pts": [[1.0, 2.0], [3.0, 4.0]], "rff_kernel_mode": "bandwidth",
               "omega": [[0.1, 0.2], [0.3, 0.4]], "bias": [0.5, 0.6], "legendre_polys": 4,
               "harmonics_calculation": "closed-form", "tile_size": 30.0, "embedding_size": 5,
               "sigmas": [2.0, 8.0, 32.0], "encoded_size": 4, "grid_levels": 3,
               "grid_coarsest": 4.0, "grid_finest": 0.5, "grid_features": 2,
               "grid_log2_table_size": 10, "grid_init": 0.001}


@pytest.mark.parametrize("kind", sorted(ENCODER_OPTIONS))
def test_every_option_of_every_encoder_is_settable_and_round_trips(kind, tmp_path):
    fields = ENCODER_OPTIONS[kind]().to_dict()
    sets = {f"location_encoder.position.{kind}.{k}": NON_DEFAULT[k] for k in fields}
    cfg = get_preset("demo").override({"location_encoder.position.type": kind, **sets})
    assert cfg.location_encoder.position.type == kind
    assert cfg.location_encoder.position.options.to_dict() == {k: NON_DEFAULT[k] for k in fields}
    assert ExperimentConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    cfg.save(str(tmp_path / "c.yaml"))
    assert ExperimentConfig.load(str(tmp_path / "c.yaml")) == cfg


def test_short_keys_set_the_selected_encoders_option():
    cfg = get_preset("demo").override({"location_encoder.position.min_radius": 2.0})
    assert cfg.location_encoder.position.options.min_radius == 2.0
    with pytest.raises(ConfigError, match="encoder 'wrap' has no such option; its options: map_range"):
        get_preset("demo").override({"location_encoder.position.type": "wrap",
                                     "location_encoder.position.min_radius": 2.0})
    with pytest.raises(ConfigError, match="selected encoder is 'gridcell'; set "
                                          "location_encoder.position.type=rbf as well"):
        get_preset("demo").override({"location_encoder.position.rbf.anchors": "uniform"})


def test_switching_type_keeps_the_shared_options():
    pe = get_preset("inat2018").location_encoder.position
    pe.type = "theory"
    assert (pe.frequency_num, pe.min_radius, pe.max_radius) == (32, 0.1, 360.0)
    pe.type = "hexagridcell"
    assert pe.options.to_dict() == {"frequency_num": 32, "max_radius": 360.0}


def test_old_flat_configs_load():
    """The shipped model's config.yaml predates the OneOf: each encoder takes its options."""
    old = ExperimentConfig.load(os.path.join(ROOT, "csp_tf/pretrained_models/places/config.yaml"))
    assert old.location_encoder.position == PositionEncoderConfig(
        "gridcell", frequency_num=32, min_radius=1.0, max_radius=360.0)
    flat = {"location_encoder": {"position": {"type": "tile", "tile_size": 5.0, "min_radius": 1.0}}}
    assert ExperimentConfig.from_dict(flat).location_encoder.position.tile_size == 5.0
    with pytest.raises(ConfigError, match="unknown config key 'location_encoder.position.radius'"):
        ExperimentConfig.from_dict({"location_encoder": {"position": {"radius": 1.0}}})
    with pytest.raises(ConfigError, match="'location_encoder.position.rbf' is given but"):
        ExperimentConfig.from_dict({"location_encoder": {"position": {"rbf": {}}}})


def test_removed_eval_frequency_loads_but_cannot_be_set():
    assert ExperimentConfig.from_dict({"finetune": {"eval_frequency": 5}}) == ExperimentConfig()
    with pytest.raises(ConfigError, match="finetune.eval_frequency' was removed: it was never read"):
        get_preset("demo").override({"finetune.eval_frequency": 3})


def test_presets_module_imports_nothing_from_csp_tf():
    """configs imports presets; presets is data, so there is no configs <-> presets cycle."""
    tree = ast.parse(open(os.path.join(ROOT, "csp_tf/presets.py")).read())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m and m.startswith("csp_tf")]


# ----- every option the README and docs document works as written ---------------------------
_SECTIONS = "data|location_encoder|pretrain|finetune|runtime"
_PAIR = re.compile(rf"(?:`|--set )((?:{_SECTIONS})\.[A-Za-z_.+]+)=([^`\s]+)")
_BARE = re.compile(rf"`((?:{_SECTIONS})\.[A-Za-z_.+]+)`")
_README_PAIR = re.compile(r"`([a-z_][A-Za-z_.+]*)=([^`\s]+)`")  # README: every `k=v` is an option


def documented_options():
    """(file, key, value) for every `key=value` / --set key=value in README.md and docs/*.md,
    and, in README.md, every `key=value` (prefixed or not) and every bare `section.key`."""
    found = []
    for path in [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs/*.md"))):
        text = open(path).read()
        found += [(os.path.basename(path), k, v) for k, v in _PAIR.findall(text)]
        if path.endswith("README.md"):
            found += [("README.md", k, v) for k, v in _README_PAIR.findall(text)
                      if not re.match(_SECTIONS, k)]
            found += [("README.md", k, None) for k in _BARE.findall(text)]
    return found


def _lookup(cfg, key):
    node = cfg
    for part in key.split("."):
        node = (node.options if isinstance(node, PositionEncoderConfig) and part == node.type
                else getattr(node, part))
    return node


def test_docs_document_options():
    keys = {k for _, k, _ in documented_options()}
    assert "location_encoder.position.rff.rff_kernel_mode" in keys and len(keys) >= 10


@pytest.mark.parametrize("where,key,text", documented_options(),
                         ids=[f"{w}:{k}" for w, k, _ in documented_options()])
def test_documented_option_is_accepted_and_lands(where, key, text):
    parts = key.split(".")
    overrides = {}
    if len(parts) == 4 and parts[:2] == ["location_encoder", "position"]:
        overrides["location_encoder.position.type"] = parts[2]  # an encoder's own section
    base = get_preset("demo").override(overrides)
    value = _lookup(base, key) if text is None else yaml.safe_load(text)
    landed = _lookup(base.override({key: value}).validate(), key)
    # A string option lands as written (`jit_compile=on` is "on", not YAML's True).
    assert landed == (text.strip("\"'") if isinstance(landed, str) and text else value)
