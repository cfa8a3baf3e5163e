"""Shared fixtures of the csp_tf.data tests: tiny generated worlds and their ingested data roots.

Session-scoped so each Beam run happens once. The CSV world runs the ingest in the default
DirectRunner mode (2 worker processes); the others run in-process, which starts much faster.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from csp_tf.data.ingest import run_ingest
from csp_tf.data.world import generate_world


def _world_and_root(base, fmt: str, in_process: bool) -> Dict[str, Any]:
    world = generate_world(str(base / "world"), "tiny", manifest_format=fmt, seed=7, inject_bad_rows=True)
    root = str(base / "data")
    summary = run_ingest(world["manifest"], root, feature_dim=64, class_names=world["class_names"],
                         num_shards=3, in_process=in_process)
    with open(world["world"]) as f:
        world["json"] = json.load(f)
    return {"world": world, "root": root, "summary": summary, "format": fmt}


@pytest.fixture(scope="session")
def csv_ingest(tmp_path_factory) -> Dict[str, Any]:
    """Tiny CSV world with bad rows, ingested with the default multi-processing DirectRunner."""
    return _world_and_root(tmp_path_factory.mktemp("csv"), "csv", in_process=False)


@pytest.fixture(scope="session")
def jsonl_ingest(tmp_path_factory) -> Dict[str, Any]:
    return _world_and_root(tmp_path_factory.mktemp("jsonl"), "jsonl", in_process=True)


@pytest.fixture(scope="session")
def parquet_ingest(tmp_path_factory) -> Dict[str, Any]:
    return _world_and_root(tmp_path_factory.mktemp("parquet"), "parquet", in_process=True)
