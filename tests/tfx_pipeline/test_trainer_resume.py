"""A killed Trainer resumes where it stopped.

The Trainers train in ``fn_args.model_run_dir/stage``, kept across runs, instead of a temporary
directory deleted in ``finally``. The pre-training Trainer's ``run_fn`` is interrupted after a
few steps (as a preempted pod would be: an error out of ``run_fn`` with a checkpoint on disk),
then run again with the same ``fn_args``: it resumes from that checkpoint and ends with the
same weights as an uninterrupted run.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import types

import keras
import numpy as np
import pytest

from pipeline_test_helpers import tiny_config


@pytest.fixture
def examples_artifact(tiny_data_root, tmp_path):
    uri = tmp_path / "examples" / "1"
    for split in ("pretrain", "train"):
        os.makedirs(uri / f"Split-{split}")
        for i, f in enumerate(sorted(glob.glob(os.path.join(tiny_data_root, split, "*.gz")))):
            shutil.copy(f, uri / f"Split-{split}" / f"data_tfrecord-{i:05d}.gz")
    return str(uri)


def _fn_args(examples_uri, root, custom_config, schema_path):
    return types.SimpleNamespace(
        train_files=[os.path.join(examples_uri, f"Split-{s}", "*") for s in ("pretrain", "train")],
        eval_files=[], custom_config=custom_config, base_model=None, schema_path=schema_path,
        model_run_dir=str(root / "model_run"), serving_model_dir=str(root / "model" / "serving"))


def _encoder_weights(stage_dir):
    import csp_tf.models  # noqa: F401 - registers CSPModel

    model = keras.saving.load_model(os.path.join(stage_dir, "model.keras"))
    return [v.numpy() for v in model.location_encoder.weights]


# in_memory: the pool read into memory sorted by id (data.pretrain_in_memory_mb). With it, the kill
# after step 3 of 4 resumes right before the epoch's short last batch; the step's graph for full
# batches then depended on which batch size was traced first, and the resumed run ended ~1e-4
# away from the uninterrupted one (fixed in csp_tf.train.steps.TrainStep._trace_batch_shapes).
@pytest.mark.parametrize("pool_mb", [0, 64], ids=["streamed", "in_memory"])
def test_killed_pretrain_trainer_resumes_where_it_stopped(examples_artifact, tiny_data_root,
                                                           tmp_path, monkeypatch, caplog, pool_mb):
    import csp_tf.train
    from csp_tf.train.data_root import DataRoot
    from tfx_pipeline import trainer_pretrain
    from tfx_pipeline.trainer_util import make_custom_config
    from tfx_pipeline.validation import render_schema

    cfg = DataRoot.open(tiny_data_root).configure(tiny_config()).override({
        "pretrain.epochs": 2, "pretrain.batch_size": 256, "runtime.checkpoint_every_steps": 0,
        "data.pretrain_in_memory_mb": pool_mb})
    custom = make_custom_config(cfg.to_dict(), [], "test")
    schema = render_schema(cfg.data.feature_dim, cfg.data.num_classes, str(tmp_path / "schema"))
    args = _fn_args(examples_artifact, tmp_path / "killed", custom, schema)
    real_pretrain = csp_tf.train.pretrain

    # 1. Killed after 3 steps: run_fn fails, the checkpoint stays in the run dir.
    monkeypatch.setattr(csp_tf.train, "pretrain", functools.partial(real_pretrain, max_steps=3))
    with pytest.raises(RuntimeError, match="re-run resumes"):
        trainer_pretrain.run_fn(args)
    stage = os.path.join(args.model_run_dir, "stage")
    assert glob.glob(os.path.join(stage, "checkpoints", "ckpt-*.index"))
    assert not os.path.exists(os.path.join(args.serving_model_dir, "saved_model.pb"))

    # 2. Re-run with the same fn_args: resumes from that checkpoint and finishes.
    monkeypatch.setattr(csp_tf.train, "pretrain", real_pretrain)
    with caplog.at_level(logging.INFO, logger="csp_tf"):
        trainer_pretrain.run_fn(args)
    assert "pretrain: resumed from" in caplog.text and stage in caplog.text
    assert os.path.exists(os.path.join(args.serving_model_dir, "saved_model.pb"))
    assert os.path.exists(os.path.join(args.serving_model_dir, "checkpoints"))

    # 3. Same weights as a Trainer that was never interrupted.
    caplog.clear()
    whole = _fn_args(examples_artifact, tmp_path / "whole", custom, schema)
    trainer_pretrain.run_fn(whole)
    assert "resumed from" not in caplog.text
    for a, b in zip(_encoder_weights(stage),
                    _encoder_weights(os.path.join(whole.model_run_dir, "stage"))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_stage_workdir_is_stable_and_maps_gcs_to_its_fuse_mount(tmp_path, monkeypatch):
    from tfx_pipeline import trainer_util

    run_dir = str(tmp_path / "run")
    assert trainer_util.stage_workdir(run_dir, "stage") == os.path.join(run_dir, "stage")
    assert os.path.isdir(os.path.join(run_dir, "stage"))
    monkeypatch.setattr(trainer_util, "GCS_FUSE_ROOT", str(tmp_path / "gcs"))
    assert trainer_util.local_path("gs://bucket/run") is None  # no mount: fallback + warning
    os.makedirs(tmp_path / "gcs")
    assert trainer_util.local_path("gs://bucket/run") == str(tmp_path / "gcs" / "bucket" / "run")
    first = trainer_util.stage_workdir("s3://b/run", "stage")
    assert first == trainer_util.stage_workdir("s3://b/run", "stage")  # stable per URI


def test_a_second_trainer_on_the_same_stage_dir_is_refused_naming_the_first(
        examples_artifact, tiny_data_root, tmp_path):
    """A retried Trainer pod while the first one still trains in ``model_run_dir/stage``:
    refused naming the first (a real second process holds the stage directory) before any
    checkpoint is read or written."""
    import subprocess
    import sys

    from csp_tf.locks import LockHeldError
    from csp_tf.train.data_root import DataRoot
    from tfx_pipeline import trainer_pretrain
    from tfx_pipeline.trainer_util import make_custom_config
    from tfx_pipeline.validation import render_schema

    cfg = DataRoot.open(tiny_data_root).configure(tiny_config())
    schema = render_schema(cfg.data.feature_dim, cfg.data.num_classes, str(tmp_path / "schema"))
    args = _fn_args(examples_artifact, tmp_path / "run", make_custom_config(cfg.to_dict(), [], "t"),
                    schema)
    stage = os.path.join(args.model_run_dir, "stage")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    hold = ("import sys, time; from csp_tf.locks import acquire; "
            "acquire(sys.argv[1], 'TFX pretrain Trainer'); print('held', flush=True); "
            "time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", hold, stage], cwd=repo, text=True,
                              env={**os.environ, "PYTHONPATH": repo}, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match=f"TFX pretrain Trainer \\(pid {holder.pid}"):
            trainer_pretrain.run_fn(args)
        assert not os.path.exists(os.path.join(stage, "checkpoints"))
    finally:
        holder.kill()
        holder.wait()
