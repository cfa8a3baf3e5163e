"""`csp-tf` (csp_cli) library commands end to end on a tiny ingested world, and their error messages."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import csp_cli as cli
from csp_tf.data.ingest import run_ingest
from csp_tf.data.world import generate_world

TINY = ["--set", "location_encoder.hidden_dim=32", "--set", "location_encoder.num_filts=16",
        "--set", "pretrain.batch_size=128", "--set", "finetune.batch_size=128",
        "--set", "finetune.image_classifier_epochs=2", "--set", "runtime.progress=false",
        "--set", "finetune.min_steps=0", "--set", "finetune.image_classifier_steps=30"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    world = generate_world(str(base / "world"), "tiny", seed=3, feature_dim=16)
    root = str(base / "data")
    run_ingest(world["manifest"], root, feature_dim=16, class_names=world["class_names"],
               num_shards=2, in_process=True)
    return root


@pytest.fixture(scope="module")
def trained(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert cli.main(["pretrain", "--data-root", data_root, "--out", str(out / "pre"), "--epochs", "1"] + TINY) == 0
    assert cli.main(["finetune", "--data-root", data_root, "--out", str(out / "ft"), "--base-model",
                     str(out / "pre"), "--label-ratio", "0.2", "--epochs", "2"] + TINY) == 0
    return out


def test_pretrain_finetune_evaluate(trained, data_root, capsys):
    assert cli.main(["evaluate", "--data-root", data_root, "--model", str(trained / "ft"),
                     "--out", str(trained / "m.json")]) == 0
    m = json.load(open(trained / "m.json"))
    # + the network alone when the model's place memory was switched on by its val choice
    assert {"fused", "image", "location"} <= set(m) <= {"fused", "image", "location",
                                                          "location_network"}
    assert 0 <= m["fused"]["top1"] <= 100
    # The fine-tuned config records the data shapes and the base it came from.
    cfg = open(trained / "ft" / "config.yaml").read()
    assert "label_ratio: 0.2" in cfg and "feature_dim: 16" in cfg


def test_export_and_embed(trained, tmp_path):
    assert cli.main(["export", "--model", str(trained / "ft"), "--export-base", str(tmp_path / "s"),
                     "--version", "7"]) == 0
    assert os.path.exists(tmp_path / "s" / "7" / "saved_model.pb")
    pd.DataFrame({"lon": [0.0, 100.0], "lat": [0.0, -45.0], "name": ["a", "b"]}).to_csv(tmp_path / "in.csv", index=False)
    assert cli.main(["embed", "--model", str(trained / "ft"), "--csv", str(tmp_path / "in.csv"),
                     "--out", str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns[:3]) == ["lon", "lat", "name"] and out.shape == (2, 3 + 16)
    assert np.isfinite(out.filter(like="emb_").to_numpy()).all()


def test_export_tflite_of_a_finetuned_stage(trained, data_root, tmp_path, capsys):
    """A real `csp-tf finetune` output: its data root's labels and the network's prior."""
    from csp_tf.export_tflite import FP32_TOLERANCE, TFLiteLocationModel
    from csp_tf.models.loading import load_csp_model

    assert cli.main(["export", "--format", "tflite", "--model", str(trained / "ft"), "--out",
                     str(tmp_path / "lite"), "--precision", "fp32, int8"]) == 0
    printed = capsys.readouterr().out
    assert "location_fp32.tflite" in printed and "location_int8.tflite" in printed
    sidecar = json.load(open(tmp_path / "lite" / "tflite_export.json"))
    model = load_csp_model(str(trained / "ft"))
    labels = open(os.path.join(data_root, "labels.txt")).read().split("\n")[:model.num_classes]
    assert sidecar["labels"] == labels and set(sidecar["files"]) == {"fp32", "int8"}
    assert sidecar["place_memory"]["model_has_one"] == (model.place_memory is not None)
    pts = np.array([[0.0, 0.0], [100.0, -45.0], [-179.5, 89.5]], np.float32)
    got = TFLiteLocationModel(str(tmp_path / "lite" / "location_fp32.tflite")).prior(pts)
    np.testing.assert_allclose(got, model.location_probs(pts, memory=False).numpy(),
                               atol=FP32_TOLERANCE, rtol=0)


def test_resume_by_rerunning_the_same_command(data_root, tmp_path, capsys):
    args = ["pretrain", "--data-root", data_root, "--out", str(tmp_path / "p"), "--epochs", "2"] + TINY
    assert cli.main(args + ["--max-steps", "2"]) == 0
    assert "paused" in capsys.readouterr().out
    assert cli.main(args) == 0
    assert "finished" in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["embed", "--model", "{ft}", "--csv", "{bad}", "--out", "{tmp}/o.csv"], "row 1: lat=91.0"),
    (["pretrain", "--data-root", "{tmp}/nowhere", "--out", "{tmp}/x"], "nowhere"),
    (["pretrain", "--data-root", "{root}", "--out", "{tmp}/x", "--set", "location_encoder.position.type=hexgrid"],
     "location_encoder.position.type='hexgrid'"),
    (["pretrain", "--data-root", "{root}", "--out", "{tmp}/x", "--set", "data.feature_dim=99"],
     "data.feature_dim=99"),
    (["finetune", "--data-root", "{root}", "--out", "{tmp}/x", "--set", "pretrain.bogus=1"],
     "unknown config key 'pretrain.bogus'"),
    (["compare", "{tmp}", "--data-root", "{root}", "--out", "{tmp}/c.md"], "no finetune/ directory"),
])
def test_user_errors_are_one_line(argv, needle, trained, data_root, tmp_path, capsys):
    pd.DataFrame({"lon": [0.0, 1.0], "lat": [0.0, 91.0]}).to_csv(tmp_path / "bad.csv", index=False)
    fmt = dict(ft=str(trained / "ft"), bad=str(tmp_path / "bad.csv"), tmp=str(tmp_path), root=data_root)
    assert cli.main([a.format(**fmt) for a in argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_help_is_fast_and_lists_commands():
    out = subprocess.run([sys.executable, "-m", "csp_cli", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    for cmd in ("pretrain", "finetune", "evaluate", "export", "embed", "generate", "ingest", "pipeline",
                "query", "experiment", "map", "compare"):
        assert cmd in out.stdout
    assert "import tensorflow" not in out.stderr


def test_preset_help_names_every_preset():
    from csp_tf.presets import PRESETS

    out = subprocess.run([sys.executable, "-m", "csp_cli", "experiment", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps the help text
    for name in PRESETS:
        assert name in text.split("named config:")[1].split("(default")[0], name
