"""Model-card provenance: config hash, data fingerprint, portable command; ``csp-tf
export-encoder`` writes them, and no path of the machine that ran it."""

import json
import os
import shutil
import sys

import pytest

from csp_tf import provenance
from csp_tf.configs import get_preset
from csp_tf.experiments.protocol import fingerprint_hash

METADATA = {
    "schema_version": 1, "feature_dim": 6, "num_classes": 2, "class_names": ["a", "b"],
    "splits": {"train": {"rows": 3, "files": ["train/part-00000-of-00001.tfrecord.gz"],
                         "bytes": [811]}},
    "train_class_counts": [2, 1], "split_fractions": [0.8, 0.1, 0.1],
    "feature_stats": {"count": 3, "mean": [0.0] * 6, "std": [1.0] * 6},
}


def _data_root(path, metadata=None, **meta_changes) -> str:
    os.makedirs(path, exist_ok=True)
    meta = dict(metadata or METADATA, **meta_changes)
    with open(os.path.join(path, "metadata.json"), "w") as f:
        json.dump(meta, f)
    return str(path)


def test_config_hash_is_the_protocols_fingerprint_and_ignores_where_the_data_is(tiny_config):
    h = provenance.config_hash(tiny_config)
    assert h == fingerprint_hash(tiny_config) and len(h) == 12
    moved = tiny_config.copy()
    moved.data.data_root = "/somewhere/else"
    assert provenance.config_hash(moved) == h
    changed = tiny_config.override({"pretrain.lr": 0.123})
    assert provenance.config_hash(changed) != h


def test_data_fingerprint_follows_the_content_not_the_location(tmp_path):
    a = _data_root(tmp_path / "a", manifests=["/data/obs.csv"])
    b = _data_root(tmp_path / "elsewhere" / "b", manifests=["gs://bucket/obs.csv"])
    assert provenance.data_fingerprint(a) == provenance.data_fingerprint(b)
    splits = {"train": dict(METADATA["splits"]["train"], bytes=[812])}
    c = _data_root(tmp_path / "c", splits=splits)
    assert provenance.data_fingerprint(c) != provenance.data_fingerprint(a)
    d = _data_root(tmp_path / "d", feature_stats=dict(METADATA["feature_stats"], mean=[0.5] * 6))
    assert provenance.data_fingerprint(d) != provenance.data_fingerprint(a)


def test_data_fingerprint_errors_name_the_file(tmp_path):
    with pytest.raises(provenance.ProvenanceError, match="metadata.json' does not exist"):
        provenance.data_fingerprint(str(tmp_path))
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(provenance.ProvenanceError, match="not a JSON metadata file"):
        provenance.data_fingerprint(str(tmp_path))


def test_portable_command_keeps_no_absolute_paths(tmp_path):
    cwd = str(tmp_path / "checkout")
    argv = ["/opt/venv/bin/csp-tf", "export-encoder", "--model", os.path.join(cwd, "runs", "pre"),
            f"--out={tmp_path}/elsewhere/enc", "--card", "card.json", "--train-command",
            "csp-tf pretrain --preset places"]
    assert provenance.portable_command(argv, cwd) == (
        "csp-tf export-encoder --model runs/pre --out=enc --card card.json --train-command "
        "'csp-tf pretrain --preset places'")


def test_export_encoder_card_records_command_config_hash_and_data_fingerprint(
        tiny_config, tmp_path, monkeypatch):
    from csp_tf.cli import cmd_export_encoder, CLIError
    from csp_cli import build_parser
    from csp_tf.models import build_csp_model

    data = _data_root(tmp_path / "data")
    stage = tmp_path / "stage"
    stage.mkdir()
    cfg = tiny_config.copy()
    cfg.data.data_root = data
    build_csp_model(cfg).save(str(stage / "model.keras"))
    cfg.save(str(stage / "config.yaml"))
    monkeypatch.chdir(tmp_path)
    argv = ["csp-tf", "export-encoder", "--model", str(stage), "--out", str(tmp_path / "enc"),
            "--train-command", "csp-tf pretrain --data-root data --out stage --preset demo"]
    monkeypatch.setattr(sys, "argv", argv)
    assert cmd_export_encoder(build_parser().parse_args(argv[1:])) == 0
    text = (tmp_path / "enc" / "card.json").read_text()
    card = json.loads(text)
    assert card["command"] == "csp-tf export-encoder --model stage --out enc --train-command " \
                              "'csp-tf pretrain --data-root data --out stage --preset demo'"
    assert card["training_command"] == argv[-1]
    assert card["config_hash"] == provenance.config_hash(cfg)
    assert card["data_fingerprint"] == provenance.data_fingerprint(data)
    assert str(tmp_path) not in text and "source_stage" not in card

    shutil.rmtree(data)  # the config's data root is gone: say so, name --data-root
    with pytest.raises(CLIError, match="cannot fingerprint the training data.*--data-root"):
        cmd_export_encoder(build_parser().parse_args(argv[1:]))
    moved = _data_root(tmp_path / "moved")
    args = build_parser().parse_args(argv[1:] + ["--data-root", moved])
    assert cmd_export_encoder(args) == 0
    assert json.loads((tmp_path / "enc" / "card.json").read_text())["data_fingerprint"] == \
        card["data_fingerprint"]
