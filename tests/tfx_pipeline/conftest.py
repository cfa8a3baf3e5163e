"""Fixtures of the tfx_pipeline tests: one tiny ingested world (session scope) and copies of it.

The e2e tests (``@pytest.mark.e2e``) run the real components on it; they are slow-ish but part
of CI. Sizes (pipeline_test_helpers.TEST_OVERRIDES) make every training stage one batch and
Beam runs in-process.
"""

from __future__ import annotations

import shutil

import pytest


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "e2e: runs real TFX components end to end (slow, in CI)")


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> str:
    """A tiny generated world (8 species, 1000 rows) ingested in-process."""
    from csp_tf.data.ingest import run_ingest
    from csp_tf.data.world import generate_world

    base = tmp_path_factory.mktemp("tiny_world")
    world = generate_world(str(base / "world"), "tiny", seed=11)
    root = str(base / "data")
    run_ingest(world["manifest"], root, feature_dim=64, class_names=world["class_names"],
               num_shards=2, in_process=True)
    return root


@pytest.fixture
def data_root_copy(tiny_data_root, tmp_path) -> str:
    """A private copy of the tiny data root that a test may damage."""
    dst = str(tmp_path / "data")
    shutil.copytree(tiny_data_root, dst)
    return dst
