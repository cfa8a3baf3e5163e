"""SIGTERM inside the TFX pre-training Trainer (a preempted pod): ``run_fn`` saves a checkpoint
at the next step boundary and fails with ``Preempted`` naming it; the re-run resumes there and
ends with the weights of an uninterrupted Trainer. The signal is real (``os.kill`` on this
process, from inside the third step's call, so it lands mid-epoch every time)."""

from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest

from pipeline_test_helpers import tiny_config
from test_trainer_resume import _encoder_weights, _fn_args, examples_artifact  # noqa: F401


def test_sigterm_in_the_pretrain_trainer_checkpoints_and_the_rerun_matches(
        examples_artifact, tiny_data_root, tmp_path, monkeypatch, caplog):  # noqa: F811
    import tensorflow as tf

    from csp_tf.preemption import Preempted
    from csp_tf.train.data_root import DataRoot
    from csp_tf.train.steps import TrainStep
    from tfx_pipeline import trainer_pretrain
    from tfx_pipeline.trainer_util import make_custom_config
    from tfx_pipeline.validation import render_schema

    cfg = DataRoot.open(tiny_data_root).configure(tiny_config()).override({
        "pretrain.epochs": 2, "pretrain.batch_size": 256, "runtime.checkpoint_every_steps": 0})
    custom = make_custom_config(cfg.to_dict(), [], "test")
    schema = render_schema(cfg.data.feature_dim, cfg.data.num_classes, str(tmp_path / "schema"))
    args = _fn_args(examples_artifact, tmp_path / "preempted", custom, schema)
    real_run, calls = TrainStep.run, []

    def run_then_sigterm(self, batches, step):
        out = real_run(self, batches, step)
        calls.append(step)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as the kubelet does, mid-epoch 1
        return out

    monkeypatch.setattr(TrainStep, "run", run_then_sigterm)
    with pytest.raises(Preempted, match=r"pretrain: stopped by SIGTERM at epoch 1, step 3 "
                                        r"\(global step 3\); checkpoint .*ckpt-3 holds step 3"):
        trainer_pretrain.run_fn(args)
    stage = os.path.join(args.model_run_dir, "stage")
    assert tf.train.latest_checkpoint(os.path.join(stage, "checkpoints")).endswith("ckpt-3")
    assert not os.path.exists(os.path.join(args.serving_model_dir, "saved_model.pb"))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is removed again

    monkeypatch.setattr(TrainStep, "run", real_run)
    with caplog.at_level(logging.INFO, logger="csp_tf"):
        trainer_pretrain.run_fn(args)
    assert "pretrain: resumed from" in caplog.text
    whole = _fn_args(examples_artifact, tmp_path / "whole", custom, schema)
    trainer_pretrain.run_fn(whole)
    for a, b in zip(_encoder_weights(stage),
                    _encoder_weights(os.path.join(whole.model_run_dir, "stage"))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_pipeline_run_exits_75_when_a_trainer_was_preempted(monkeypatch, tmp_path, capsys):
    import csp_cli
    from csp_tf.preemption import PREEMPTED_EXIT_CODE, Preempted
    from tfx_pipeline import local_runner

    stop = Preempted("pretrain: stopped by SIGTERM at epoch 2, step 5 (global step 12); "
                     "checkpoint X/ckpt-12 holds step 12. Re-run the same command ...",
                     stage="pretrain", signal_name="SIGTERM", checkpoint="X/ckpt-12")

    def preempted_run(*args, **kwargs):
        try:
            raise stop
        except Preempted as exc:
            raise local_runner.PipelineRunError(
                f"component 'pretrain_trainer' failed: Preempted: {exc}") from exc

    monkeypatch.setattr(local_runner, "run_local", preempted_run)
    code = csp_cli.main(["pipeline", "run", "--data-root", str(tmp_path), "--pipeline-root",
                         str(tmp_path / "root"), "--serving-dir", str(tmp_path / "serving")])
    assert code == PREEMPTED_EXIT_CODE
    assert f"csp-tf pipeline run: preempted: {stop}" in capsys.readouterr().err
