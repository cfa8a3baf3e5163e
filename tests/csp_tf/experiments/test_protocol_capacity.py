"""``location_encoder.capacity=auto`` in the protocol: each fine-tuning cell gets the scale and
length its own label subset asks for; a pre-trained encoder keeps its scale."""

from __future__ import annotations

import os
from typing import List

from csp_tf import capacity
from csp_tf.configs import ExperimentConfig
from csp_tf.experiments.methods import parse_methods
from csp_tf.experiments.protocol import Protocol, run_protocol
from csp_tf.train.data_root import DataRoot

from experiment_helpers import tiny_experiment_config


def test_auto_capacity_is_resolved_per_cell(tiny_world, tmp_path):
    base = tiny_experiment_config().override({"location_encoder.capacity": "auto",
                                              "pretrain.epochs": 1})
    p = Protocol(data_root=tiny_world["data_root"], out_dir=str(tmp_path / "exp"),
                 base_config=base, methods=parse_methods("sup_grid,csp"), ratios=[0.5],
                 seeds=[0], config_name="tiny auto")
    lines: List[str] = []
    run_protocol(p, echo=lines.append)

    lon_lat = DataRoot.open(tiny_world["data_root"]).labeled("train", 0.5)["lon_lat"]
    want = capacity.snap_scale(capacity.SCALE_PER_SPACING * capacity.labeled_spacing_deg(lon_lat))
    assert want != base.location_encoder.position.min_radius  # else the test shows nothing

    def saved(method: str) -> ExperimentConfig:
        return ExperimentConfig.load(os.path.join(
            p.finetune_dir(parse_methods(method)[0], 0.5, 0), "config.yaml"))

    sup, csp = saved("sup_grid"), saved("csp")
    assert sup.location_encoder.position.min_radius == want
    assert sup.finetune.epochs == csp.finetune.epochs == capacity.MIN_EPOCHS
    assert (sup.location_encoder.hidden_dim, sup.location_encoder.dropout) == (512, 0.0)
    # fine-tuned from the pre-trained encoder: the network and scale it was pre-trained with
    assert csp.location_encoder.position.min_radius == base.location_encoder.position.min_radius
    assert csp.location_encoder.hidden_dim == base.location_encoder.hidden_dim == 32
    assert sum("capacity=auto" in line for line in lines) == 2
