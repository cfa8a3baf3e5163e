"""Shared fixtures: one tiny generated world, ingested once, and one tiny protocol run on it.

Session-scoped so the Beam ingest and the training run happen once for all the tests here.
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from experiment_helpers import tiny_experiment_config


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Dict[str, Any]:
    """A tiny generated world (8 species) and its data root (ingested in-process)."""
    from csp_tf.data.ingest import run_ingest
    from csp_tf.data.world import generate_world

    base = tmp_path_factory.mktemp("exp_world")
    world = generate_world(str(base / "world"), "tiny", seed=3)
    root = str(base / "world" / "data")  # the layout of `csp-tf generate --ingest`
    run_ingest(world["manifest"], root, feature_dim=64, class_names=world["class_names"],
               num_shards=2, in_process=True)
    return {"world_dir": str(base / "world"), "data_root": root,
            "num_classes": len(world["class_names"])}


@pytest.fixture(scope="session")
def experiment_run(tiny_world, tmp_path_factory) -> Dict[str, Any]:
    """One protocol run: 2 methods (Sup-only grid, CSP) × 1 ratio × 1 seed."""
    from csp_tf.experiments.methods import parse_methods
    from csp_tf.experiments.protocol import Protocol, run_protocol

    out = str(tmp_path_factory.mktemp("exp_out") / "exp")
    protocol = Protocol(data_root=tiny_world["data_root"], out_dir=out,
                        base_config=tiny_experiment_config(),
                        methods=parse_methods("sup_grid,csp"), ratios=[0.5], seeds=[0],
                        config_name="tiny")
    lines: List[str] = []
    rows = run_protocol(protocol, echo=lines.append)
    return {"protocol": protocol, "rows": rows, "lines": lines, "out": out}
