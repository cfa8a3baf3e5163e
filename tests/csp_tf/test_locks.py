"""``csp_tf.locks``: one writer per target, the holder named, the stale-lock rules."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from csp_tf import locks
from csp_tf.locks import LockHeldError, acquire, lock_path_for, writer_lock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_HOLD = ("import sys, time; from csp_tf.locks import acquire; "
         "acquire(sys.argv[1], 'holder'); print('held', flush=True); time.sleep(600)")


def _holder(target: str) -> subprocess.Popen:
    """A real second process that takes the lock of ``target`` and keeps it."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, target], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _write_record(target: str, **fields) -> str:
    path = lock_path_for(target)
    record = {"pid": 1, "host": socket.gethostname(), "purpose": "csp-tf ingest",
              "started": "2026-01-01T00:00:00+00:00", "command": "csp-tf ingest --out x"}
    record.update(fields)
    with open(path, "w") as f:
        json.dump(record, f)
    return path


def test_the_lock_file_is_beside_the_target(tmp_path):
    assert lock_path_for(str(tmp_path / "data")) == str(tmp_path / ".data.lock")
    assert lock_path_for(str(tmp_path / "data") + "/") == str(tmp_path / ".data.lock")


def test_a_live_holder_in_another_process_is_named_and_a_dead_one_is_taken_over(tmp_path):
    target = str(tmp_path / "root")
    proc = _holder(target)
    try:
        with pytest.raises(LockHeldError) as err:
            acquire(target, "csp-tf ingest")
        message = str(err.value)
        for part in (f"pid {proc.pid}", f"host {socket.gethostname()}", "holder", "started",
                     lock_path_for(target)):
            assert part in message, (part, message)
        assert err.value.holder["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # SIGKILL: the kernel dropped its flock; the record names a dead pid: taken over at once
    with writer_lock(target, "csp-tf ingest") as lock:
        assert json.load(open(lock.path))["pid"] == os.getpid()
    assert not os.path.exists(lock_path_for(target))  # released: the file is gone


def test_a_record_whose_pid_is_dead_on_this_host_is_stale(tmp_path):
    target = str(tmp_path / "root")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_record(target, pid=dead.pid)
    with writer_lock(target, "csp-tf ingest"):
        pass


def test_a_live_pid_with_another_start_time_is_a_reused_pid(tmp_path):
    target = str(tmp_path / "root")
    _write_record(target, pid=os.getppid(), proc_start=-5)  # alive, but not that process
    with writer_lock(target, "csp-tf ingest"):
        pass


def test_a_live_pid_on_this_host_holds_even_where_flock_is_not_shared(tmp_path):
    """A record naming a live process on this host holds the lock although no flock is held
    (a file system that ignores flock)."""
    target = str(tmp_path / "root")
    parent_start = locks._proc_start(os.getppid())
    _write_record(target, pid=os.getppid(), proc_start=parent_start)
    with pytest.raises(LockHeldError, match=f"pid {os.getppid()}"):
        acquire(target, "csp-tf training")


def test_another_hosts_record_holds_until_its_heartbeat_is_older_than_the_ttl(tmp_path):
    target = str(tmp_path / "root")
    path = _write_record(target, host="other-host", pid=12345)
    with pytest.raises(LockHeldError, match="on host other-host"):
        acquire(target, "csp-tf push", ttl_s=60)
    old = time.time() - 120
    os.utime(path, (old, old))  # silent for 2 minutes: past a 60 s TTL
    with writer_lock(target, "csp-tf push", ttl_s=60):
        pass


def test_the_holder_refreshes_its_heartbeat(tmp_path):
    target = str(tmp_path / "root")
    with writer_lock(target, "csp-tf training", ttl_s=0.4) as lock:
        old = time.time() - 100
        os.utime(lock.path, (old, old))
        deadline = time.time() + 10  # heartbeat every ttl/4 = 0.1 s; a busy machine may lag
        while os.stat(lock.path).st_mtime < old + 50 and time.time() < deadline:
            time.sleep(0.05)
        assert os.stat(lock.path).st_mtime > old + 50  # refreshed: no longer 100 s old


def test_object_store_targets_are_not_locked(tmp_path):
    with writer_lock("gs://bucket/data", "csp-tf ingest") as lock:
        assert lock.path is None


def test_without_flock_the_holder_record_alone_decides(tmp_path, monkeypatch):
    """A file system whose flock fails (ENOLCK: NFS without a lock manager, some FUSE mounts):
    a live holder's record still refuses a second writer; a dead one's is taken over."""
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    target = str(tmp_path / "root")
    parent_start = locks._proc_start(os.getppid())
    _write_record(target, pid=os.getppid(), proc_start=parent_start)
    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.raises(LockHeldError, match=f"pid {os.getppid()}"):
        acquire(target, "csp-tf training")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_record(target, pid=dead.pid)
    with writer_lock(target, "csp-tf training") as lock:
        assert json.load(open(lock.path))["token"] == lock.record["token"]
