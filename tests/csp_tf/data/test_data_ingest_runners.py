"""The ingest on other Beam runners: which options reach which runner, and Beam's DaskRunner
against a local dask.distributed cluster of worker processes writing the DirectRunner's data
root, byte for byte."""

from __future__ import annotations

import filecmp
import json
import os

import pytest

from csp_tf.data.errors import DataError
from csp_tf.data.ingest import dask_pipeline_options, make_pipeline_options, run_ingest
from csp_tf.data.world import generate_world

DASK = "apache_beam.runners.dask.dask_runner.DaskRunner"


def test_direct_options_go_to_the_direct_runner_only():
    direct = make_pipeline_options([], in_process=False).get_all_options()
    assert (direct["runner"], direct["direct_num_workers"], direct["direct_running_mode"]) == (
        "DirectRunner", 1, "in_memory")  # the two-process mode dropped batches at 10^6 rows
    two = make_pipeline_options(["--direct_running_mode=multi_processing",
                                 "--direct_num_workers=2"], in_process=False).get_all_options()
    assert (two["direct_running_mode"], two["direct_num_workers"]) == ("multi_processing", 2)
    dask = make_pipeline_options([f"--runner={DASK}", "--dask_client_address=tcp://127.0.0.1:1"],
                                 in_process=False)
    given = dask.get_all_options(drop_default=True)
    assert given == {"runner": DASK, "address": "tcp://127.0.0.1:1"}  # no --direct_* options
    # the runner passes every non-default option to dask.distributed.Client: only its own
    assert dask_pipeline_options(dask).get_all_options(drop_default=True) == {"address": "tcp://127.0.0.1:1"}


def test_dask_runner_refuses_what_it_cannot_take():
    with pytest.raises(DataError, match="takes only its --dask_\\* options; drop --save_main_session"):
        make_pipeline_options(["--runner=DaskRunner", "--save_main_session"], in_process=False)
    with pytest.raises(DataError, match="--in-process runs the DirectRunner"):
        make_pipeline_options([f"--runner={DASK}"], in_process=True)
    with pytest.raises(DataError, match="unknown Beam option.*--dask_nonsense"):
        make_pipeline_options([f"--runner={DASK}", "--dask_nonsense=1"], in_process=False)


def _files(root):
    """Every shard, dead-letter file and metadata.json of a data root (relative paths)."""
    out = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if rel.endswith((".tfrecord.gz", ".jsonl")) or rel in ("metadata.json", "labels.txt"):
                out.append(rel)
    return sorted(out)


@pytest.mark.e2e
def test_dask_runner_writes_the_direct_runners_data_root(tmp_path):
    from distributed import Client, LocalCluster

    world = generate_world(str(tmp_path / "world"), "tiny", manifest_format="jsonl", seed=5,
                           inject_bad_rows=True)
    # no class names: the vocabulary is collected, which takes the most groupings
    direct = run_ingest(world["manifest"], str(tmp_path / "direct"), 64, num_shards=3, in_process=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster:  # any free ports
        with Client(cluster) as client:  # two worker processes, neither of them this one
            pids = set(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        dask = run_ingest(world["manifest"], str(tmp_path / "dask"), 64, num_shards=3,
                          beam_args=[f"--runner={DASK}",
                                     f"--dask_client_address={cluster.scheduler_address}"])
    assert dask["runner"] == DASK
    for key in ("rows_in", "rows_out", "rejected"):
        assert dask[key] == direct[key], key
    assert sum(direct["rejected"].values()) > 0 and direct["rows_out"]["train"] > 0
    files = _files(str(tmp_path / "direct"))
    assert files == _files(str(tmp_path / "dask")) and len(files) == 4 * 3 + 3 + 2
    _, mismatch, errors = filecmp.cmpfiles(str(tmp_path / "direct"), str(tmp_path / "dask"), files,
                                           shallow=False)
    assert not mismatch and not errors  # same records per split, dead letter and statistics
    with open(tmp_path / "dask" / "metadata.json") as f:
        assert json.load(f)["feature_stats"]["count"] == sum(direct["rows_out"].values())


def test_two_process_direct_runner_keeps_every_row_under_frequent_flushes(tmp_path, monkeypatch):
    """The DirectRunner's multi_processing mode sends each stage's input to its workers through
    Beam's timed data-plane buffer, whose flush thread dropped writes landing inside a flush
    (csp_tf.data.beam_data_plane). A flush every millisecond, each handing its bytes on slowly
    (as a large buffer's copy does at 10^6 rows), and frequent thread switches open that window
    many times on a small input:
    without the fix rows go missing (the ingest's count check fails) or a record is cut (a step
    fails); with it the root is the one-process root, byte for byte."""
    import sys
    import time

    from apache_beam.runners.portability.fn_api_runner import worker_handlers
    from apache_beam.runners.worker import data_plane

    world = generate_world(str(tmp_path / "world"), "small", manifest_format="jsonl", seed=3,
                           feature_dim=128, num_unlabeled=30000, inject_bad_rows=True)
    one = run_ingest(world["manifest"], str(tmp_path / "one"), 128, num_shards=3, in_process=True)
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", 1)
    output_stream = data_plane._GrpcDataChannel.output_stream

    def slow_output_stream(self, *args, **kwargs):
        stream = output_stream(self, *args, **kwargs)
        send = stream._flush_callback

        def slow_send(data):
            time.sleep(0.002)
            send(data)

        stream._flush_callback = slow_send
        return stream

    monkeypatch.setattr(data_plane._GrpcDataChannel, "output_stream", slow_output_stream)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # the writing thread yields the GIL often, as over a long input
    try:
        two = run_ingest(world["manifest"], str(tmp_path / "two"), 128, num_shards=3,
                         beam_args=["--direct_running_mode=multi_processing",
                                    "--direct_num_workers=2"])
    finally:
        sys.setswitchinterval(interval)
    for key in ("rows_in", "rows_out", "rejected"):
        assert two[key] == one[key], key
    files = _files(str(tmp_path / "one"))
    assert files == _files(str(tmp_path / "two"))
    _, mismatch, errors = filecmp.cmpfiles(str(tmp_path / "one"), str(tmp_path / "two"), files,
                                           shallow=False)
    assert not mismatch and not errors
