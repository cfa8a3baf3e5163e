"""``csp-tf experiment --base-model``: the pre-training methods fine-tune from one given encoder
(its network, scales and weights) instead of pre-training once per seed."""

from __future__ import annotations

import os
from typing import List

import numpy as np
import pytest

from csp_tf.configs import ConfigError, ExperimentConfig
from csp_tf.experiments.methods import parse_methods
from csp_tf.experiments.protocol import BaseEncoder, Protocol, run_protocol
from csp_tf.models.loading import load_csp_model
from csp_tf.train.data_root import DataRoot, stage_inputs

from experiment_helpers import tiny_experiment_config


@pytest.fixture(scope="module")
def given_encoder(tiny_world, tmp_path_factory):
    """A pre-trained stage whose network differs from the experiment's (48 wide, 0.5° finest)."""
    from csp_tf.train import pretrain

    cfg = tiny_experiment_config().override({"location_encoder.hidden_dim": 48,
                                             "location_encoder.position.min_radius": 0.5})
    root = DataRoot.open(tiny_world["data_root"])
    cfg = root.configure(cfg)
    out = str(tmp_path_factory.mktemp("given") / "pre")
    pretrain(cfg, output_dir=out, **stage_inputs(cfg, root, "pretrain"))
    return out


def _encoder_weights(stage_dir: str) -> List[np.ndarray]:
    return load_csp_model(stage_dir).location_encoder.get_weights()


def test_cells_start_from_the_given_encoder_and_never_pretrain(tiny_world, given_encoder, tmp_path):
    base = tiny_experiment_config().override({"finetune.epochs": 0})  # weights stay as loaded
    p = Protocol(data_root=tiny_world["data_root"], out_dir=str(tmp_path / "exp"),
                 base_config=base, methods=parse_methods("csp,sup_grid"), ratios=[0.5],
                 seeds=[0, 1], config_name="tiny", base_model=given_encoder)
    lines: List[str] = []
    rows = run_protocol(p, echo=lines.append)

    assert not os.path.exists(os.path.join(p.out_dir, "pretrain"))
    assert any("fine-tune from" in line for line in lines)
    want = _encoder_weights(given_encoder)
    for seed in (0, 1):
        cell = p.finetune_dir(parse_methods("csp")[0], 0.5, seed)
        saved = ExperimentConfig.load(os.path.join(cell, "config.yaml"))
        assert saved.location_encoder.hidden_dim == 48
        assert saved.location_encoder.position.min_radius == 0.5
        got = _encoder_weights(cell)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    sup = ExperimentConfig.load(os.path.join(p.finetune_dir(parse_methods("sup_grid")[0], 0.5, 0),
                                             "config.yaml"))
    assert sup.location_encoder.hidden_dim == base.location_encoder.hidden_dim  # not pre-trained
    assert {r["method"] for r in rows} >= {"csp", "sup_grid"}
    plain = Protocol(data_root=p.data_root, out_dir=p.out_dir, base_config=base,
                     methods=p.methods, ratios=p.ratios, seeds=[0], config_name="tiny")
    with pytest.raises(ConfigError, match="different config"):
        run_protocol(plain, echo=lambda _: None)  # the same dir without the encoder: refused


def test_a_base_model_that_is_no_encoder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a shipped encoder name, an encoder dir"):
        BaseEncoder.open(str(tmp_path))
    shipped = BaseEncoder.open("places")
    assert shipped.config.location_encoder.hidden_dim == 512 and len(shipped.digest) == 12
