"""Presets are recipes, not data sets: they take shapes from the data; --set works as documented."""

import argparse

import pytest

from csp_tf.cli import load_config
from csp_tf.configs import ConfigError, get_preset


@pytest.mark.parametrize("name", ["inat2018", "fmow", "fmow_released", "demo", "demo_reference",
                                  "places"])
def test_every_preset_fits_any_feature_width(name, tmp_path):
    import json
    from csp_tf.train.data_root import DataRoot

    root = tmp_path / "root"
    root.mkdir()
    meta = {"schema_version": 1, "feature_dim": 128, "num_classes": 22,
            "class_names": [f"c{i}" for i in range(22)], "splits": {},
            "train_class_counts": [1] * 22}
    (root / "metadata.json").write_text(json.dumps(meta))
    try:
        cfg = DataRoot.open(str(root)).configure(get_preset(name))
    except Exception as exc:  # the metadata reader may want more keys: then say which
        pytest.fail(f"{name}: {exc}")
    assert (cfg.data.feature_dim, cfg.data.num_classes) == (128, 22)


def test_natural_and_reference_recipes():
    nat, ref = get_preset("demo").finetune, get_preset("demo_reference").finetune
    assert (nat.location_loss, nat.sampler, nat.fusion, nat.image_classifier_solver) == (
        "softmax", "shuffle", "calibrated", "fullbatch")
    assert (ref.location_loss, ref.sampler, ref.fusion, ref.image_classifier_solver) == (
        "presence", "balanced", "product", "minibatch")


@pytest.mark.parametrize("text,want", [("on", "on"), ("off", "off"), ("auto", "auto")])
def test_set_jit_compile_works_as_written(text, want):
    args = argparse.Namespace(config=None, preset="demo", overrides=[f"runtime.jit_compile={text}"])
    assert load_config(args).runtime.jit_compile == want


def test_conflicting_explicit_shape_is_an_error(tmp_path):
    import json
    from csp_tf.train.data_root import DataRoot
    (tmp_path / "metadata.json").write_text(json.dumps(
        {"schema_version": 1, "feature_dim": 128, "num_classes": 2, "class_names": ["a", "b"],
         "splits": {}, "train_class_counts": [1, 1]}))
    cfg = get_preset("inat2018")
    cfg.data.feature_dim = 2048
    with pytest.raises(ConfigError, match="feature_dim=2048"):
        DataRoot.open(str(tmp_path)).configure(cfg)
