"""A streamed pre-training pool holds no rows in memory: no read into arrays, no counting
pass (steps per epoch come from metadata.json), and a tf.data graph whose size does not grow
with the number of rows (no cache, no embedded pool), while one epoch still yields every row
once. The memory and rates at 10^5-5x10^6 rows: benchmarks/pretrain_streaming.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from csp_tf.configs import get_preset
from csp_tf.data import reader, schema
from csp_tf.train import data_root as data_root_module
from csp_tf.train.data_root import DataRoot, stage_inputs

FEATURE_DIM, SHARDS, BATCH = 8, 4, 64


def _write_root(path: str, rows: int) -> str:
    """A data root of ``rows`` unlabeled pretrain rows in SHARDS files, metadata.json as the
    ingest writes it."""
    os.makedirs(os.path.join(path, "pretrain"))
    rng = np.random.default_rng(rows)
    files, sizes = [], []
    for shard in range(SHARDS):
        rel = f"pretrain/part-{shard:05d}-of-{SHARDS:05d}.tfrecord.gz"
        with tf.io.TFRecordWriter(os.path.join(path, rel), options="GZIP") as w:
            for i in range(shard, rows, SHARDS):
                w.write(schema.encode_example({
                    "id": f"r{i:06d}", "lon": float(rng.uniform(-180, 180)),
                    "lat": float(rng.uniform(-90, 90)),
                    "image_features": rng.standard_normal(FEATURE_DIM).astype(np.float32)}))
        files.append(rel)
        sizes.append(os.path.getsize(os.path.join(path, rel)))
    empty = {"rows": 0, "files": [], "bytes": []}
    meta = {"schema_version": schema.SCHEMA_VERSION, "feature_dim": FEATURE_DIM, "num_classes": 2,
            "class_names": ["a", "b"], "train_class_counts": [0, 0],
            "splits": {"pretrain": {"rows": rows, "files": files, "bytes": sizes},
                       "train": empty, "val": empty, "test": empty}}
    with open(os.path.join(path, "metadata.json"), "w") as f:
        json.dump(meta, f)
    return path


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("streamed")
    return {n: _write_root(str(base / f"r{n:06d}"), n) for n in (300, 3000)}  # same path lengths


def _streamed(root: str, monkeypatch):
    def no_full_read(*args, **kwargs):
        raise AssertionError("a streamed pool must not be read into memory or counted")

    monkeypatch.setattr(reader, "read_arrays", no_full_read)
    monkeypatch.setattr(data_root_module, "_count_records", no_full_read)
    data = DataRoot.open(root)
    cfg = data.configure(get_preset("demo").override({
        "pretrain.batch_size": BATCH, "data.pretrain_in_memory_mb": 0, "data.shuffle_buffer": 256}))
    return stage_inputs(cfg, data, "pretrain")["stage_input"]


def _const_bytes(ds: tf.data.Dataset) -> int:
    """Bytes of every constant in the dataset's graph: what the pipeline carries with it (the
    file list when streamed, the whole pool when read into memory)."""
    graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    total = 0
    for node in nodes:
        if node.op == "Const":
            t = node.attr["value"].tensor
            total += len(t.tensor_content) + sum(len(v) for v in t.string_val) + 4 * (
                len(t.float_val) + len(t.int_val)) + 8 * len(t.int64_val)
    return total


def _ops(ds: tf.data.Dataset):
    graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())
    return {node.op for node in graph.node} | {node.op for f in graph.library.function for node in f.node_def}


def test_a_streamed_epoch_yields_every_row_once_without_reading_the_pool(roots, monkeypatch):
    stage_input = _streamed(roots[3000], monkeypatch)
    assert stage_input.num_examples == 3000 and stage_input.steps_per_epoch == -(-3000 // BATCH)
    ids = np.concatenate([b["id"].numpy() for b in stage_input.dataset_fn(0)])
    assert len(ids) == 3000 and len(set(ids.tolist())) == 3000


def test_the_streamed_pipeline_does_not_grow_with_the_rows(roots, monkeypatch):
    small, large = (_streamed(roots[n], monkeypatch).dataset_fn(0) for n in (300, 3000))
    assert _const_bytes(small) == _const_bytes(large) < 4096  # the file list, not the pool
    assert not {op for op in _ops(large) if "Cache" in op or "Snapshot" in op}


def test_the_in_memory_pool_is_the_one_that_grows(roots):
    """The counter-check: below data.pretrain_in_memory_mb the pool is embedded."""
    def in_memory(root):
        data = DataRoot.open(root)
        cfg = data.configure(get_preset("demo").override({"pretrain.batch_size": BATCH}))
        return stage_inputs(cfg, data, "pretrain")["stage_input"].dataset_fn(0)

    assert _const_bytes(in_memory(roots[3000])) > _const_bytes(in_memory(roots[300])) + 2700 * 4 * FEATURE_DIM
