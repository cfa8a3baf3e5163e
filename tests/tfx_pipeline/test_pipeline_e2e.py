"""End to end: the full local pipeline on a tiny world, checked through MLMD.

One module-scoped run; the later tests re-run the same pipeline (same root and MLMD) with the
cache on, which is itself part of what they check.
"""

from __future__ import annotations

import os

import pytest

from pipeline_test_helpers import TEST_BEAM_ARGS, tiny_config, version_dirs

pytestmark = pytest.mark.e2e

TRAINING_NODES = ("ImportExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator",
                  "AnomaliesGate", "pretrain_trainer", "finetune_trainer")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline")


def _run(workdir, data_root, **kwargs):
    from tfx_pipeline.local_runner import run_local

    # A one-batch model is only a point or two above a kNN on the tiny world (95 vs 93 % top-1):
    # the kNN check is off unless a test sets it, so a change of recipe does not fail the other
    # tests here (test_a_model_below_the_knn_is_not_pushed_and_the_report_says_why tests it).
    kwargs.setdefault("knn_tolerance", 1.0)
    return run_local(str(workdir / "root"), data_root, str(workdir / "serving"), tiny_config(),
                     beam_args=TEST_BEAM_ARGS, **kwargs)


PROGRESS = []


@pytest.fixture(scope="module")
def first_run(workdir, tiny_data_root):
    # min_top1=0: a one-step model must still be blessed (the gate itself is tested below).
    return _run(workdir, tiny_data_root, min_top1=0.0, progress=PROGRESS.append)


def test_every_component_reports_its_start_and_end(first_run):
    comps = first_run["components"]
    running = [line.split()[2] for line in PROGRESS if line.endswith("s)") and " running " in line]
    done = [line.split()[1] for line in PROGRESS if " done in " in line]
    assert sorted(running) == sorted(done) == sorted(comps), PROGRESS
    assert PROGRESS[0].startswith(f"pipeline: [1/{len(comps)}] ImportExampleGen running")


def test_full_run_pushes_a_blessed_model(first_run, workdir):
    comps = first_run["components"]
    assert set(TRAINING_NODES) | {"Evaluator", "Pusher"} <= set(comps)
    assert all(c["state"] == "COMPLETE" for c in comps.values()), comps
    assert first_run["component_seconds"]["pretrain_trainer"] > 0  # from MLMD timestamps
    assert first_run["blessed"] and first_run["pushed"]
    versions = version_dirs(str(workdir / "serving"))
    assert len(versions) == 1
    pushed = os.path.join(str(workdir / "serving"), versions[0])
    assert first_run["pushed_dir"] == pushed
    assert os.path.exists(os.path.join(pushed, "saved_model.pb"))
    assert os.path.exists(os.path.join(pushed, "assets.extra", "tf_serving_warmup_requests"))


def test_pushed_model_lineage_reaches_the_examples(first_run):
    from tfx_pipeline import lineage

    store = lineage.connect(first_run["metadata_path"])
    push_uri = first_run["components"]["Pusher"]["outputs"]["pushed_model"][0]
    pushed = lineage.artifact_by_uri(store, push_uri)
    upstream = lineage.upstream_artifacts(store, pushed.id)
    types = set(upstream.values())
    assert {"Examples", "Model", "ModelBlessing", "Schema"} <= types
    # Two Model artifacts upstream: the fine-tuned one and, through base_model, the pre-trained.
    model_uris = {store.get_artifacts_by_id([i])[0].uri for i, t in upstream.items() if t == "Model"}
    assert any("/pretrain_trainer/" in u for u in model_uris)
    assert any("/finetune_trainer/" in u for u in model_uris)


def test_trainers_use_the_config_runtime_and_write_stage_files(first_run):
    import json

    comps = first_run["components"]
    base = comps["pretrain_trainer"]["outputs"]["model"][0]
    serving = os.path.join(base, "Format-Serving")
    for name in ("saved_model.pb", "config.yaml", "model.keras", "checkpoints"):
        assert os.path.exists(os.path.join(serving, name)), name
    with open(os.path.join(first_run["model_run_dir"], "runtime.json")) as f:
        runtime = json.load(f)
    assert runtime["jit_compile"] == "auto" and runtime["distribution"] == "default"
    assert runtime["jit_compile_resolved"] == bool(runtime["gpus"])  # auto = on with a GPU
    assert runtime["base_model"].endswith("Format-Serving")
    with open(os.path.join(first_run["model_run_dir"], "metrics.json")) as f:
        metrics = json.load(f)["metrics"]
    assert {"fused", "image", "location"} <= set(metrics)


def test_served_model_answers_serving_default(first_run):
    import numpy as np
    import tensorflow as tf

    from csp_tf.data.schema import encode_example

    model = tf.saved_model.load(first_run["pushed_dir"])
    example = encode_example({"id": "q", "lon": 10.0, "lat": 50.0,
                              "image_features": np.zeros(64, np.float32)})
    out = model.signatures["serving_default"](examples=tf.constant([example]))
    probs = out["probabilities"].numpy()
    assert probs.shape == (1, 8) and np.all(np.isfinite(probs))


def test_report_names_both_sources(first_run):
    from tfx_pipeline.report import format_report

    text = format_report(first_run)
    assert "Img-only" in text and "CSP" in text and "overall" in text and "region=" in text
    assert "pretrain_trainer" in text and "Blessed: yes" in text


def test_rerun_reuses_unchanged_components(first_run, workdir, tiny_data_root):
    second = _run(workdir, tiny_data_root, min_top1=0.0)
    states = {n: c["state"] for n, c in second["components"].items()}
    for node in TRAINING_NODES:
        assert states[node] == "CACHED", states
    assert second["model_dir"] == first_run["model_dir"]  # the same trained model


def test_impossible_threshold_blesses_and_pushes_nothing(first_run, workdir, tiny_data_root):
    before = version_dirs(str(workdir / "serving"))
    run = _run(workdir, tiny_data_root, min_top1=1.01)
    assert run["components"]["Evaluator"]["state"] == "COMPLETE"
    assert not run["blessed"] and not run["pushed"]
    assert version_dirs(str(workdir / "serving")) == before
    blessing = run["components"]["Evaluator"]["outputs"]["blessing"][0]
    assert os.path.exists(os.path.join(blessing, "NOT_BLESSED"))


def _gate(run):
    import json

    blessing = run["components"]["ModelGate"]["outputs"]["blessing"][0]
    with open(os.path.join(blessing, "gate.json")) as f:
        return json.load(f)


def test_a_model_below_the_knn_is_not_pushed_and_the_report_says_why(first_run, workdir,
                                                                      tiny_data_root):
    from tfx_pipeline.report import format_report

    before = version_dirs(str(workdir / "serving"))
    assert _gate(first_run)["blessed"] and 0 < _gate(first_run)["knn_top1"] <= 1
    # knn_tolerance -0.2: the model must beat the kNN on the same val rows by 20 points.
    run = _run(workdir, tiny_data_root, min_top1=0.0, knn_tolerance=-0.2)
    assert not run["blessed"] and not run["pushed"]
    assert version_dirs(str(workdir / "serving")) == before
    gate = _gate(run)
    assert gate["evaluator_blessed"]
    assert "the kNN baseline's" in run["not_blessed_reason"]
    assert gate["candidate_top1"] < gate["knn_top1"] + 0.2
    assert f"Push skipped: fused top-1 {100 * gate['candidate_top1']:.2f} % is below the " \
           f"required {100 * (gate['knn_top1'] + 0.2):.2f} %: the kNN baseline's " \
           f"{100 * gate['knn_top1']:.2f} %" in format_report(run)


def test_a_model_worse_than_the_blessed_one_is_not_pushed(first_run, workdir, tiny_data_root):
    """The Evaluator's baseline is the latest model ModelGate blessed (the pushed one): here the
    same model, so it is 0 points better, short of a required +0.5."""
    before = version_dirs(str(workdir / "serving"))
    run = _run(workdir, tiny_data_root, min_top1=0.0, top1_change_tolerance=-0.5)
    assert not run["blessed"] and not run["pushed"]
    assert version_dirs(str(workdir / "serving")) == before
    assert "Evaluator: top1_accuracy change vs the blessed model = +0.0000 fails its threshold " \
           "(at least +0.5000)" in run["not_blessed_reason"], run["not_blessed_reason"]


def test_a_second_run_on_the_same_data_gives_the_same_metrics(first_run, tiny_data_root,
                                                              tmp_path):
    """A fresh pipeline root (nothing cached): ImportExampleGen re-shards the rows, yet every
    metric of the fine-tuning Trainer and of the Evaluator is identical."""
    import json

    from tfx_pipeline.local_runner import run_local
    from tfx_pipeline.report import tfma_metrics

    second = run_local(str(tmp_path / "root"), tiny_data_root, str(tmp_path / "serving"),
                       tiny_config(), beam_args=TEST_BEAM_ARGS, min_top1=0.0, knn_tolerance=1.0)
    assert second["components"]["finetune_trainer"]["state"] == "COMPLETE"  # trained again
    metrics = [json.load(open(os.path.join(r["model_run_dir"], "metrics.json")))["metrics"]
               for r in (first_run, second)]
    assert metrics[0] == metrics[1]
    assert tfma_metrics(first_run["evaluation_dir"]) == tfma_metrics(second["evaluation_dir"])
    assert _gate(first_run)["knn_top1"] == _gate(second)["knn_top1"]
