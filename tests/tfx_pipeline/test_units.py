"""Fast checks of the pipeline's pieces: schema rendering, TFMA config, trainer inputs from an
examples artifact, custom_config, the pipeline factory and the CLI."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pipeline_test_helpers import tiny_config


def test_render_schema_pins_shapes_and_keys_the_path_on_content(tmp_path):
    import tensorflow_data_validation as tfdv

    from tfx_pipeline.validation import render_schema

    a = render_schema(64, 8, str(tmp_path))
    assert render_schema(64, 8, str(tmp_path)) == a  # same content, same path (cache hit)
    b = render_schema(32, 8, str(tmp_path))
    assert a != b
    schema = tfdv.load_schema_text(a)
    feats = {f.name: f for f in schema.feature}
    assert (feats["image_features"].value_count.min, feats["image_features"].value_count.max) == (64, 64)
    assert (feats["label"].int_domain.min, feats["label"].int_domain.max) == (-1, 7)
    with pytest.raises(ValueError):
        render_schema(0, 8, str(tmp_path))


def test_checked_in_schema_matches_the_feature_keys_and_regions():
    import tensorflow_data_validation as tfdv

    from csp_tf import features as fk
    from csp_tf.data.regions import REGIONS
    from tfx_pipeline import configs

    schema = tfdv.load_schema_text(configs.SCHEMA_TEMPLATE)
    assert {f.name for f in schema.feature} == {fk.ID, fk.LON, fk.LAT, fk.IMAGE_FEATURES, fk.LABEL,
                                                fk.CLASS_RANK, fk.CLASS_COUNT, fk.REGION, fk.LABEL_SUBSET}
    regions = set(schema.string_domain[0].value)
    assert set(REGIONS) | {"other"} == regions


def test_eval_config_gates_top1_on_the_overall_slice_only():
    from tfx_pipeline.evaluation import TOP1, make_eval_config

    cfg = make_eval_config(min_top1=0.4, top1_change_tolerance=0.02)
    spec = cfg.model_specs[0]
    assert (spec.signature_name, spec.label_key, spec.prediction_key) == \
        ("serving_default", "label", "probabilities")
    assert [list(s.feature_keys) for s in cfg.slicing_specs] == [[], ["region"]]
    metrics = {m.class_name + m.config: m for m in cfg.metrics_specs[0].metrics}
    top1 = next(m for m in metrics.values() if TOP1 in m.config)
    assert not top1.HasField("threshold")
    (per_slice,) = top1.per_slice_thresholds
    assert list(per_slice.slicing_specs[0].feature_keys) == []
    assert per_slice.threshold.value_threshold.lower_bound.value == 0.4
    assert per_slice.threshold.change_threshold.absolute.value == pytest.approx(-0.02)


@pytest.fixture
def fake_examples_artifact(tiny_data_root, tmp_path):
    """The data root's shards laid out as an ExampleGen artifact (Split-<name>/...)."""
    uri = tmp_path / "examples" / "1"
    for split in ("pretrain", "train", "val"):
        os.makedirs(uri / f"Split-{split}")
        for i, f in enumerate(sorted(glob.glob(os.path.join(tiny_data_root, split, "*.gz")))):
            shutil.copy(f, uri / f"Split-{split}" / f"data_tfrecord-{i:05d}.gz")
    return str(uri)


def _batches(stage_input, epoch):
    return [{k: b[k].numpy() for k in ("lon_lat", "image_features", "label")}
            for b in stage_input.dataset_fn(epoch)]


def _assert_same_inputs(a, b):
    for key in ("stage_input", "image_input"):
        if key in a:
            assert a[key].num_examples == b[key].num_examples
            for epoch in (0, 1):
                for x, y in zip(_batches(a[key], epoch), _batches(b[key], epoch), strict=True):
                    for k in x:
                        np.testing.assert_array_equal(x[k], y[k])
    for key in ("image_arrays", "validation"):
        assert (a.get(key) is None) == (b.get(key) is None)
        for k in (a.get(key) or {}):
            np.testing.assert_array_equal(a[key][k], b[key][k])
    np.testing.assert_array_equal(a["feature_stats"][0], b["feature_stats"][0])


@pytest.mark.parametrize("overrides", [
    {}, {"pretrain.sampler": "balanced", "finetune.sampler": "balanced",
         "finetune.image_classifier_labels": "all", "finetune.image_classifier_solver": "fullbatch",
         "finetune.fusion": "calibrated"}])
def test_stage_inputs_from_the_data_root_and_the_examples_artifact_are_identical(
        fake_examples_artifact, tiny_data_root, overrides):
    """The CLI's source (metadata.json) and the Trainers' (Split-<name> files + custom_config)
    give the same rows in the same order for a seed, epoch after epoch."""
    from csp_tf.train.data_root import DataRoot, stage_inputs

    ours = DataRoot.open(tiny_data_root)
    cfg = ours.configure(tiny_config()).override(dict(overrides, **{"pretrain.batch_size": 128}))
    patterns = [os.path.join(fake_examples_artifact, f"Split-{s}", "*")
                for s in ("pretrain", "train", "val")]
    theirs = DataRoot.from_examples(patterns, cfg.data.feature_dim, cfg.data.num_classes,
                                    ours.class_names, ours.feature_stats)
    assert {s: theirs.rows(s) for s in theirs.splits} == {s: ours.rows(s) for s in theirs.splits}
    for stage in ("pretrain", "finetune"):
        _assert_same_inputs(stage_inputs(cfg, ours, stage), stage_inputs(cfg, theirs, stage))
    with pytest.raises(ValueError, match="not an ExampleGen split pattern"):
        DataRoot.from_examples([os.path.join(tiny_data_root, "train", "*")], 64, 8)


def _reshard(src_dir, dst_dir, num_files):
    """The records of ``src_dir``'s shards, reversed and dealt round-robin into ``num_files``
    gzip files, as ExampleGen lays out the same rows differently on every run."""
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(
        sorted(glob.glob(os.path.join(src_dir, "*.gz"))), compression_type="GZIP")][::-1]
    os.makedirs(dst_dir)
    opts = tf.io.TFRecordOptions(compression_type="GZIP")
    for i in range(num_files):
        with tf.io.TFRecordWriter(os.path.join(dst_dir, f"data_tfrecord-{i:05d}-of-{num_files:05d}.gz"),
                                  opts) as w:
            for r in records[i::num_files]:
                w.write(r)


def test_pretraining_batches_do_not_depend_on_the_file_layout(tiny_data_root, tmp_path):
    """ExampleGen reshards the same rows differently on every run: with the in-memory pool
    (data.pretrain_in_memory_mb > 0, the default) the rows are sorted by id, so a run on a
    re-sharded artifact sees the same batches. Streamed (0) the order follows the files."""
    from csp_tf.train.data_root import DataRoot, stage_inputs

    ours = DataRoot.open(tiny_data_root)
    cfg = ours.configure(tiny_config()).override({"pretrain.batch_size": 128,
                                                  "data.pretrain_in_memory_mb": 64})
    uri = tmp_path / "examples" / "2"
    for split in ("pretrain", "train"):
        _reshard(os.path.join(tiny_data_root, split), str(uri / f"Split-{split}"), 3)
    theirs = DataRoot.from_examples([str(uri / f"Split-{s}" / "*") for s in ("pretrain", "train")],
                                    cfg.data.feature_dim, cfg.data.num_classes,
                                    ours.class_names, ours.feature_stats)
    _assert_same_inputs(stage_inputs(cfg, ours, "pretrain"), stage_inputs(cfg, theirs, "pretrain"))
    streamed = cfg.override({"data.pretrain_in_memory_mb": 0})
    a, b = (stage_inputs(streamed, r, "pretrain")["stage_input"] for r in (ours, theirs))
    assert a.num_examples == b.num_examples
    first = [np.concatenate([x["lon_lat"] for x in _batches(si, 0)]) for si in (a, b)]
    assert sorted(map(tuple, first[0])) == sorted(map(tuple, first[1]))  # same rows ...
    assert not np.array_equal(first[0], first[1])  # ... in another order


def test_trainer_checks_the_schema_it_is_wired_to(tmp_path):
    from csp_tf.configs import ConfigError
    from tfx_pipeline.trainer_util import check_schema
    from tfx_pipeline.validation import render_schema

    check_schema(render_schema(64, 8, str(tmp_path)), 64)
    with pytest.raises(ConfigError, match="'image_features' has 32 values"):
        check_schema(render_schema(32, 8, str(tmp_path)), 64)
    text = open(render_schema(64, 8, str(tmp_path))).read().replace('name: "label"', 'name: "y"')
    (tmp_path / "renamed.pbtxt").write_text(text)
    with pytest.raises(ConfigError, match="'label' is missing"):
        check_schema(str(tmp_path / "renamed.pbtxt"), 64)


def test_import_executor_names_a_missing_split(data_root_copy):
    from tfx.proto import example_gen_pb2
    from tfx.utils import proto_utils

    from csp_tf.data.errors import DataError
    from tfx_pipeline.components.checked_import import split_files

    config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=s, pattern=f"{s}/*.tfrecord.gz") for s in ("train", "val")])
    found = split_files(data_root_copy, proto_utils.proto_to_json(config))
    assert sorted(found) == ["train", "val"] and all(found.values())
    shutil.rmtree(os.path.join(data_root_copy, "val"))
    with pytest.raises(DataError, match="split 'val' matches no files"):
        split_files(data_root_copy, proto_utils.proto_to_json(config))


def test_custom_config_round_trip_and_errors():
    from csp_tf.configs import ConfigError
    from tfx_pipeline.trainer_util import make_custom_config, read_custom_config

    cfg = tiny_config().override({"data.feature_dim": 64, "data.num_classes": 3,
                                  "runtime.jit_compile": "on", "runtime.mixed_precision": "on"})
    back, names = read_custom_config(make_custom_config(cfg.to_dict(), ["a", "b", "c"], "v1"))
    assert back == cfg and names == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="experiment"):
        read_custom_config({})
    with pytest.raises(ConfigError, match="feature_dim"):
        read_custom_config(make_custom_config(tiny_config().to_dict(), [], "v1"))
    with pytest.raises(ConfigError, match="class names"):
        read_custom_config(make_custom_config(cfg.to_dict(), ["a"], "v1"))


def test_create_pipeline_wires_the_components(tmp_path):
    from tfx_pipeline.pipeline import create_pipeline
    from tfx_pipeline.validation import render_schema

    cfg = tiny_config().override({"data.feature_dim": 64, "data.num_classes": 8})
    p = create_pipeline(pipeline_name="t", pipeline_root=str(tmp_path / "root"), data_root="/d",
                        serving_dir="/s", schema_path=render_schema(64, 8, str(tmp_path)),
                        experiment=cfg.to_dict(), class_names=[str(i) for i in range(8)],
                        beam_pipeline_args=["--direct_num_workers=1"], code_version="v")
    ids = [c.id for c in p.components]
    assert ids.index("AnomaliesGate") < ids.index("pretrain_trainer") < ids.index("finetune_trainer")
    by_id = {c.id: c for c in p.components}
    ft = by_id["finetune_trainer"]
    assert ft.inputs["base_model"].producer_component_id == "pretrain_trainer"
    assert by_id["AnomaliesGate"] in ft.upstream_nodes
    assert p.beam_pipeline_args == ["--direct_num_workers=1"]


def test_code_version_is_stable():
    from tfx_pipeline.local_runner import code_version

    assert code_version() == code_version() and len(code_version()) == 16


def test_pipeline_parser_does_not_import_tfx():
    code = ("import argparse, sys\n"
            "from tfx_pipeline.cli import add_pipeline_parser\n"
            "p = argparse.ArgumentParser(prog='csp-tf'); add_pipeline_parser(p.add_subparsers())\n"
            "try:\n    p.parse_args(['pipeline', 'run', '--help'])\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tfx', 'tensorflow', 'apache_beam')]\n"
            "print('IMPORTED', bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "--pipeline-root" in out.stdout and "IMPORTED []" in out.stdout, out.stdout + out.stderr


def test_csp_tf_help_lists_pipeline_without_tfx():
    code = ("import sys, csp_cli as c\n"
            "try:\n    c.main(['pipeline', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', [m for m in sys.modules if m.split('.')[0] == 'tfx'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "compile" in out.stdout and "IMPORTED []" in out.stdout, out.stdout + out.stderr


def test_compile_without_target_is_a_usage_error(capsys):
    from csp_cli import main

    code = main(["pipeline", "compile", "--data-root", "d", "--pipeline-root", "r", "--serving-dir", "s"])
    assert code == 2 and "--kubeflow" in capsys.readouterr().err
