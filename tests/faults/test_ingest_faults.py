"""Fault injection for ``csp-tf ingest`` (docs/reliability.md, "Data (ingest)").

Each test damages an input, the output path or the run itself and checks that no row is lost
silently: the ingest either accounts for every row (written or dead-lettered) or fails with
one line naming the file and what to do.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from csp_tf import features as fk
from csp_tf.data import reader
from csp_tf.data.errors import DataError
from csp_tf.data.ingest import explain_pipeline_error, run_ingest
from csp_tf.data.manifests import ManifestFile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = "id,lon,lat,label,features\n"


def _csv_lines(n: int, dim: int = 2, labeled: bool = True, prefix: str = "r") -> list:
    rng = np.random.default_rng(n)
    return [f"{prefix}{i:06d},{rng.uniform(-170, 170):.5f},{rng.uniform(-80, 80):.5f},"
            f"{('c%d' % (i % 3)) if labeled else ''},{' '.join(f'{v:.4f}' for v in rng.normal(size=dim))}\n"
            for i in range(n)]


def _write_csv(path, lines, header=HEADER) -> str:
    path.write_text(header + "".join(lines))
    return str(path)


def _all_rows(root: str) -> dict:
    return {s: reader.load_split_arrays(root, s) for s in fk.SPLITS}


def _assert_same_root(a: str, b: str) -> None:
    left, right = _all_rows(a), _all_rows(b)
    for split in fk.SPLITS:
        for key in left[split]:
            np.testing.assert_array_equal(left[split][key], right[split][key], err_msg=f"{split}/{key}")
    assert reader.read_metadata(a).train_class_counts == reader.read_metadata(b).train_class_counts


def _siblings(root: str) -> list:
    parent, name = os.path.split(root)
    return [e for e in os.listdir(parent) if e.startswith(f".{name}.ingest-")]


# ----- 1. truncated / corrupt gzip manifests -----------------------------------------------------
def _gzip_with_flush_point(lines) -> bytes:
    """A gzip stream with a full flush half way: cut there, zlib sees clean data, no error."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    half = len(lines) // 2
    head = comp.compress((HEADER + "".join(lines[:half])).encode()) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.compress("".join(lines[half:]).encode()) + comp.flush()
    return head, head + tail


@pytest.mark.parametrize("damage", ["cut_at_flush_point", "cut_mid_block", "corrupt_bytes", "empty"])
def test_truncated_or_corrupt_gzip_manifest_fails_naming_the_file(tmp_path, damage):
    head, whole = _gzip_with_flush_point(_csv_lines(2000))
    if damage == "cut_at_flush_point":
        data = head
    elif damage == "cut_mid_block":
        data = whole[: len(whole) * 2 // 3]
    elif damage == "corrupt_bytes":
        data = bytearray(whole)
        data[len(data) // 2: len(data) // 2 + 16] = b"\x00" * 16
        data = bytes(data)
    else:
        data = b""
    path = tmp_path / "obs.csv.gz"
    path.write_bytes(data)
    with pytest.raises(DataError, match=r"obs\.csv\.gz.*(truncated or corrupt gzip|empty file)"):
        run_ingest(str(path), str(tmp_path / "out"), 2, in_process=True)
    assert not os.path.exists(tmp_path / "out")


def test_an_intact_gzip_manifest_is_read_whole(tmp_path):
    _, whole = _gzip_with_flush_point(_csv_lines(300))
    (tmp_path / "obs.jsonl.gz").write_bytes(gzip.compress(
        "".join(json.dumps({"id": f"j{i}", "lon": 1.0, "lat": 2.0, "features": [1, 2]}) + "\n"
                for i in range(50)).encode()))
    (tmp_path / "obs.csv.gz").write_bytes(whole)
    summary = run_ingest([str(tmp_path / "obs.csv.gz"), str(tmp_path / "obs.jsonl.gz")],
                         str(tmp_path / "out"), 2, in_process=True, num_shards=1)
    assert summary["rows_in"] == 350 and sum(summary["rows_out"].values()) == 350


# ----- 2. a non-UTF-8 byte -----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_non_utf8_byte_dead_letters_one_row(tmp_path, fmt):
    good = [f'{{"id": "g{i}", "lon": 1.5, "lat": 2.5, "label": "a", "features": [1, 2]}}\n'.encode()
            for i in range(20)] if fmt == "jsonl" else [l.encode() for l in _csv_lines(20)]
    bad = (b'{"id": "bad", "lon": 1, "lat": 2, "label": "caf\xe9", "features": [1, 2]}\n' if fmt == "jsonl"
           else b"bad,1,2,caf\xe9,1 2\n")
    path = tmp_path / f"m.{fmt}"
    path.write_bytes((HEADER.encode() if fmt == "csv" else b"") + b"".join(good[:10]) + bad + b"".join(good[10:]))
    summary = run_ingest(str(path), str(tmp_path / "out"), 2, in_process=True, num_shards=1)
    assert summary["rows_in"] == 21 and sum(summary["rows_out"].values()) == 20
    assert summary["rejected"] == {"encoding_error": 1}
    dead = [json.loads(l) for name in os.listdir(tmp_path / "out" / "dead_letter")
            for l in open(tmp_path / "out" / "dead_letter" / name)]
    assert len(dead) == 1 and dead[0]["field"] == "<row>" and dead[0]["source"].endswith(f"m.{fmt}")
    offset = bad.index(b"\xe9")
    assert f"not UTF-8: byte 0xe9 at byte offset {offset}" in dead[0]["detail"]


# ----- 3. errors under the default multi-process runner ------------------------------------------
def _parquet_with_corrupt_pages(path, n: int = 300) -> None:
    """Footer and schema intact (pre-flight passes), data pages garbage: fails inside a worker."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [f"p{i}" for i in range(n)], "lon": [float(i % 90) for i in range(n)],
                      "lat": [1.0] * n, "features": [[float(i), 1.0] for i in range(n)]})
    pq.write_table(table, str(path), compression="snappy")
    data = bytearray(path.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    data[8: len(data) - footer - 108] = b"\xab" * (len(data) - footer - 116)
    path.write_bytes(bytes(data))


def test_worker_failure_under_the_multiprocess_runner_ends_with_one_clear_line(tmp_path, capsys):
    from csp_tf.data.cli import main

    path = tmp_path / "obs.parquet"
    _parquet_with_corrupt_pages(path)
    code = main(["ingest", "--manifest", str(path), "--out", str(tmp_path / "out"),
                 "--feature-dim", "2", "--num-shards", "1"])  # default: 2 worker processes
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("csp-tf ingest: error: the ingest failed reading manifest")
    assert str(path) in last and "re-export" in last and "Traceback" not in last
    assert not os.path.exists(tmp_path / "out") and not _siblings(str(tmp_path / "out"))


def test_explain_pipeline_error_unwraps_remote_traceback_text():
    remote = RuntimeError(
        "Traceback (most recent call last):\n  File \"x.py\", line 1, in process\n"
        "ValueError: bad things in row 7\n [while running 'Encode[train]']\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n  File \"y.py\", line 2\n"
        "RuntimeError: Traceback (most recent call last):\n")
    err = explain_pipeline_error(remote, [ManifestFile("/data/m.csv", "csv")])
    message = str(err)
    assert "\n" not in message
    assert "step 'Encode[train]'" in message and "ValueError: bad things in row 7" in message
    assert "run again" in message


def test_output_path_that_is_a_file_fails_before_the_pipeline(tmp_path):
    manifest = _write_csv(tmp_path / "m.csv", _csv_lines(5))
    (tmp_path / "out").write_text("not a directory")
    with pytest.raises(DataError, match=r"output path .*out' is a file.*--out"):
        run_ingest(manifest, str(tmp_path / "out"), 2)


# ----- 4. BOM in JSONL, repeated header columns, digits of an out-of-range value ----------------
def test_jsonl_bom_duplicate_header_and_out_of_range_digits(tmp_path):
    rows = [{"id": "first", "lon": 1.0, "lat": 2.0, "features": [1, 2]},
            {"id": "edge", "lon": 180.0000001, "lat": 2.0, "features": [1, 2]},
            {"id": "last", "lon": 3.0, "lat": 4.0, "features": [1, 2]}]
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows).encode())
    summary = run_ingest(str(path), str(tmp_path / "out"), 2, in_process=True, num_shards=1)
    assert summary["rejected"] == {"lon_out_of_range": 1}
    assert set(reader.load_split_arrays(str(tmp_path / "out"), "pretrain")["id"]) == {"first", "last"}
    dead = json.loads(open(tmp_path / "out" / "dead_letter" / os.listdir(tmp_path / "out" / "dead_letter")[0]).readline())
    assert "180.0000001 is outside [-180, 180]" in dead["detail"]

    dup = _write_csv(tmp_path / "dup.csv", ["a,1,2,3,1 2\n"], header="id,lon,lat,lat,features\n")
    with pytest.raises(DataError, match=r"dup\.csv.*column 'lat' appears 2 times"):
        run_ingest(dup, str(tmp_path / "out2"), 2, in_process=True)


# ----- 5. --overwrite keeps the old root until the new one is complete -------------------------
def test_a_failed_overwrite_leaves_the_old_data_root_intact(tmp_path):
    root = str(tmp_path / "root")
    good = _write_csv(tmp_path / "good.csv", _csv_lines(200))
    run_ingest(good, root, 2, in_process=True, num_shards=2)
    before = {name: open(os.path.join(root, name)).read() for name in ("metadata.json", "summary.json")}
    (tmp_path / "foreign.txt").write_text("x")

    bad = tmp_path / "bad.parquet"
    _parquet_with_corrupt_pages(bad)
    with pytest.raises(DataError, match="bad.parquet"):
        run_ingest(str(bad), root, 2, in_process=True, overwrite=True)
    assert {n: open(os.path.join(root, n)).read() for n in before} == before
    assert sum(len(a["id"]) for a in _all_rows(root).values()) == 200  # every shard still reads
    assert not _siblings(root)

    run_ingest(_write_csv(tmp_path / "new.csv", _csv_lines(50)), root, 2, in_process=True,
               overwrite=True, num_shards=1)
    assert sum(len(a["id"]) for a in _all_rows(root).values()) == 50 and not _siblings(root)


def test_overwrite_keeps_files_that_are_not_the_ingests(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    manifest = _write_csv(tmp_path / "m.csv", _csv_lines(30))
    run_ingest(manifest, str(root), 2, in_process=True, num_shards=1)
    run_ingest(manifest, str(root), 2, in_process=True, num_shards=1, overwrite=True)
    assert (root / "notes.txt").read_text() == "mine"
    assert reader.read_metadata(str(root)).splits["train"].rows > 0


# ----- 6. training on an empty split ------------------------------------------------------------
def test_training_on_an_empty_split_names_the_split_and_the_root(tmp_path):
    from csp_tf.configs import ConfigError, ExperimentConfig
    from csp_tf.train.data_root import DataRoot, stage_inputs

    lines = [l.rstrip("\n") + ",val\n" for l in _csv_lines(20)]  # every row fixed to val
    manifest = _write_csv(tmp_path / "m.csv", lines, header="id,lon,lat,label,features,split\n")
    root = str(tmp_path / "root")
    summary = run_ingest(manifest, root, 2, in_process=True, num_shards=1)
    assert summary["rows_out"] == {"pretrain": 0, "train": 0, "val": 20, "test": 0}
    cfg, data = ExperimentConfig(), DataRoot.open(root)
    with pytest.raises(ConfigError, match=r"'pretrain' and 'train' .*root.* have 0 rows"):
        stage_inputs(cfg, data, "pretrain")
    with pytest.raises(ConfigError, match=r"split 'train' of the data root .*root.* has 0 rows"):
        stage_inputs(cfg, data, "finetune")
    cfg.pretrain.sampler = "balanced"
    with pytest.raises(ConfigError, match="split 'train'"):
        stage_inputs(cfg, data, "pretrain")


# ----- 7. 0-byte and non-Parquet .parquet files --------------------------------------------------
@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (b"id,lon,lat\n1,2,3\n", "not a readable Parquet"),
    (b"PAR1" + b"\x00" * 64, "not a readable Parquet")])
def test_empty_or_non_parquet_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "obs.parquet"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"obs\.parquet.*{message}"):
        run_ingest(str(path), str(tmp_path / "out"), 2, in_process=True)
    assert not os.path.exists(tmp_path / "out")


def test_truncated_parquet_is_a_clear_error_before_the_pipeline(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "obs.parquet"
    pq.write_table(pa.table({"id": ["a"] * 50, "lon": [1.0] * 50, "lat": [2.0] * 50}), str(path))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"obs\.parquet.*truncated or not Parquet; re-export"):
        run_ingest(str(path), str(tmp_path / "out"), 2)


# ----- kill the ingest mid-run and rerun ------------------------------------------------------------
def _ingest_cmd(manifest: str, root: str) -> list:
    return [sys.executable, "-m", "csp_tf.data.cli", "ingest", "--manifest", manifest, "--out", root,
            "--feature-dim", "8", "--num-shards", "2", "--in-process", "--overwrite"]


def test_kill_mid_run_then_rerun_gives_the_same_output_without_duplicates(tmp_path):
    manifest = _write_csv(tmp_path / "m.csv", _csv_lines(10000, dim=8)
                          + _csv_lines(2000, dim=8, labeled=False, prefix="u"))
    reference, root = str(tmp_path / "reference"), str(tmp_path / "root")
    run_ingest(manifest, reference, 8, in_process=True, num_shards=2)
    run_ingest(manifest, root, 8, in_process=True, num_shards=2)  # the root a re-ingest replaces
    before = open(os.path.join(root, "metadata.json")).read()

    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen(_ingest_cmd(manifest, root), cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not _siblings(root) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the staging directory exists: the Beam run is under way
        assert proc.poll() is None, "the ingest finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert open(os.path.join(root, "metadata.json")).read() == before  # old root untouched
    assert _siblings(root)  # the killed run's staging directory is left behind...

    done = subprocess.run(_ingest_cmd(manifest, root), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not _siblings(root)  # ...and the rerun removes it
    _assert_same_root(reference, root)
    ids = np.concatenate([a["id"] for a in _all_rows(root).values()])
    assert len(ids) == len(set(ids)) == 12000  # nothing duplicated, nothing lost


# ----- a full disk and a second writer ------------------------------------------------------------
def test_a_full_disk_fails_naming_the_path_and_keeps_the_old_root(tmp_path, small_fs):
    """ENOSPC on a real size-limited file system (a tmpfs the test mounts) while the shards are
    written: one line naming the path and the free space; the old root reads as before."""
    fs = small_fs.mount(4 << 20)
    manifest = _write_csv(tmp_path / "m.csv", _csv_lines(4000, dim=8))
    root, reference = os.path.join(fs, "root"), str(tmp_path / "reference")
    run_ingest(manifest, reference, 8, in_process=True, num_shards=2)
    run_ingest(manifest, root, 8, in_process=True, num_shards=2)
    before = open(os.path.join(root, "metadata.json")).read()
    filler = small_fs.fill(fs, 32 << 10)

    with pytest.raises(DataError) as err:
        run_ingest(manifest, root, 8, in_process=True, num_shards=2, overwrite=True)
    message = str(err.value)
    assert "ran out of disk space" in message and f".root.ingest-tmp-" in message, message
    assert "free there" in message and "previous data root" in message, message
    assert open(os.path.join(root, "metadata.json")).read() == before
    _assert_same_root(reference, root)  # every shard of the old root still reads
    assert not _siblings(root)  # the partial output is gone, nothing half-written is left

    os.remove(filler)  # with space again, the same command succeeds
    run_ingest(manifest, root, 8, in_process=True, num_shards=2, overwrite=True)
    _assert_same_root(reference, root)


def _wait_for_lock_holder(proc, lock_file: str, timeout_s: float = 120) -> dict:
    """The holder record once ``proc`` has written it to ``lock_file``."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        try:
            record = json.loads(open(lock_file).read())
            if record.get("pid") == proc.pid:
                return record
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"{lock_file} never named pid {proc.pid} (exit {proc.poll()})")


@pytest.mark.e2e
def test_a_second_ingest_into_the_same_root_is_refused_naming_the_first(tmp_path):
    """A real second process: the first ingest is frozen (SIGSTOP) while it holds the root;
    a second one is refused naming its pid, host and command; the first then completes, alone."""
    manifest = _write_csv(tmp_path / "m.csv", _csv_lines(3000, dim=8))
    other = _write_csv(tmp_path / "other.csv", _csv_lines(500, dim=8, prefix="x"))
    root, reference = str(tmp_path / "root"), str(tmp_path / "reference")
    run_ingest(manifest, reference, 8, in_process=True, num_shards=2)
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen(_ingest_cmd(manifest, root), cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        holder = _wait_for_lock_holder(proc, str(tmp_path / ".root.lock"))
        os.killpg(proc.pid, signal.SIGSTOP)
        assert holder["purpose"] == "csp-tf ingest" and "--manifest" in holder["command"]
        with pytest.raises(DataError) as err:
            run_ingest(other, root, 8, in_process=True, num_shards=2, overwrite=True)
        message = str(err.value)
        for part in (f"pid {proc.pid}", f"on host {holder['host']}", holder["started"],
                     "csp-tf ingest", "--manifest", ".root.lock"):
            assert part in message, (part, message)
    finally:
        os.killpg(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    _assert_same_root(reference, root)  # the first ingest's rows only: nothing interleaved
    assert not os.path.exists(tmp_path / ".root.lock")
