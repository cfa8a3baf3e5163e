"""One writer per target: a lock file beside a data root, a training output or a serving base.

Every csp-tf writer of a shared directory (the ingest's data root, a training stage's ``--out``
with its checkpoints, an export or push into a serving base path) holds :func:`writer_lock` for
the whole write. A second writer of the same target is refused at once with a
:class:`LockHeldError` naming the holder: pid, host, start time, command and what it is doing.

The lock is the file ``<parent>/.<name>.lock`` next to the target (beside it, not inside: the
ingest swaps whole directories by rename). It is taken in three steps:

1. ``flock(LOCK_EX | LOCK_NB)`` on the file: the kernel drops it when the holder dies, even on
   SIGKILL, so a dead holder on this host never blocks anyone;
2. the holder's record (JSON) is read: a holder on this host whose pid is alive (and is the same
   process: its start time in ``/proc`` matches) still holds the lock, in case the file system
   ignores ``flock``; a holder on ANOTHER host (a shared file system whose locks may not reach
   across hosts) holds it while its heartbeat is fresh: the holder touches the file every
   ``ttl_s / 4`` seconds, and a record not refreshed for ``ttl_s`` seconds is stale;
3. the winner writes its own record and keeps the file open (and locked) until it is done.
   Where the file system has no ``flock`` (some FUSE mounts), step 2 alone decides, and the
   winner re-reads the file a moment later: of two simultaneous writers, the one whose record
   did not stay is refused.

A stale lock (holder dead on this host, or silent for ``ttl_s``) is taken over with a log line
saying whose it was. Object stores (``gs://...``) have no such primitive: their targets are not
locked (a debug line says so), so run one writer per target there.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional

log = logging.getLogger("csp_tf.locks")

DEFAULT_TTL_S = 600.0  # a record silent this long (10 heartbeats missed) is stale
# flock errors of file systems without it (FUSE, NFS without a lock manager): fall back to the
# holder record's rules, then check after _SETTLE_S that our record is the one that stayed.
_NO_FLOCK = (errno.ENOLCK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_SETTLE_S = 0.2
LOCK_SUFFIX = ".lock"


class LockHeldError(RuntimeError):
    """Another live writer holds the target; the message names it and the lock file."""

    def __init__(self, message: str, holder: Dict[str, Any], lock_path: str):
        super().__init__(message)
        self.holder = holder
        self.lock_path = lock_path


def lock_path_for(target: str) -> str:
    """``<parent>/.<name>.lock`` for the directory (or file) ``target``."""
    parent, name = os.path.split(os.path.abspath(target.rstrip("/\\") or target))
    return os.path.join(parent, f".{name}{LOCK_SUFFIX}")


@dataclass
class WriterLock:
    """A held lock: ``path`` is the lock file, ``record`` what it says about this process."""

    target: str
    path: Optional[str]
    record: Dict[str, Any]
    _fd: Optional[int] = None
    _stop: Optional[threading.Event] = None
    _thread: Optional[threading.Thread] = None

    def release(self) -> None:
        """Stops the heartbeat and removes the lock file (while still holding its flock, so
        nobody can lock the inode that is about to disappear)."""
        if self._stop is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(5)
        if self._fd is None:
            return
        try:
            if self.path and _same_file(self._fd, self.path):
                os.unlink(self.path)
        except OSError as exc:  # the write is done; a leftover file is taken over later
            log.warning("could not remove the lock file %s: %s", self.path, exc)
        finally:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def writer_lock(target: str, purpose: str, ttl_s: float = DEFAULT_TTL_S) -> Iterator[WriterLock]:
    """Holds the writer lock of ``target`` for the ``with`` block (see the module doc).

    Args:
      target: the directory written (need not exist yet; its parent is created).
      purpose: what the holder does, shown to a refused writer (``ingest``, ``training``...).
      ttl_s: seconds after which a record from another host that was not refreshed is stale.

    Raises:
      LockHeldError: a live writer holds ``target``.
    """
    lock = acquire(target, purpose, ttl_s)
    try:
        yield lock
    finally:
        lock.release()


def acquire(target: str, purpose: str, ttl_s: float = DEFAULT_TTL_S) -> WriterLock:
    """Takes the lock of ``target`` or raises :class:`LockHeldError`; call ``release()``."""
    record = _own_record(target, purpose)
    if "://" in target:
        log.debug("%s is not on a local or mounted file system: not locked", target)
        return WriterLock(target, None, record)
    path = lock_path_for(target)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for _ in range(10):  # the holder may unlink the file between our open and our flock
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        flocked = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _NO_FLOCK:  # e.g. a FUSE mount: the record's rules alone decide
                flocked = False
                log.debug("%s: flock unavailable (%s); using the holder record only", path, exc)
            elif exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                holder = _read_record(fd)
                os.close(fd)
                raise _held(target, path, holder) from None
            else:
                os.close(fd)
                raise
        if not _same_file(fd, path):
            os.close(fd)
            continue
        holder = _read_record(fd)
        if holder and _alive(holder, ttl_s, path):
            os.close(fd)
            raise _held(target, path, holder)
        if holder:
            log.warning("taking over the stale lock %s of %s (pid %s on %s since %s)", path,
                        holder.get("purpose", "?"), holder.get("pid"), holder.get("host"),
                        holder.get("started"))
        _write_record(fd, record)
        if not flocked:  # two writers may have raced: the record that stayed wins
            time.sleep(_SETTLE_S)
            current = _read_record(fd)
            if not current or current.get("token") != record["token"]:
                os.close(fd)
                raise _held(target, path, current)
        lock = WriterLock(target, path, record, fd, threading.Event())
        lock._thread = threading.Thread(target=_heartbeat, args=(path, lock._stop, ttl_s / 4),
                                        name=f"lock-heartbeat-{os.path.basename(path)}",
                                        daemon=True)
        lock._thread.start()
        return lock
    raise OSError(f"could not lock {path}: it kept being replaced; try again")


# ----- the holder's record ------------------------------------------------------------------------
def _own_record(target: str, purpose: str) -> Dict[str, Any]:
    now = time.time()
    return {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
            "target": os.path.abspath(target) if "://" not in target else target,
            "started": _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(
                timespec="seconds"),
            "started_unix": round(now, 3), "proc_start": _proc_start(os.getpid()),
            "command": " ".join(_command()), "token": uuid.uuid4().hex}


def _command() -> list:
    argv = list(sys.argv) or ["python"]
    argv[0] = os.path.basename(argv[0])
    return argv


def _write_record(fd: int, record: Dict[str, Any]) -> None:
    data = (json.dumps(record, indent=1) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _read_record(fd: int) -> Optional[Dict[str, Any]]:
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, max(size, 1), 0) if size else b""
        record = json.loads(data.decode("utf-8")) if data.strip() else None
    except (OSError, ValueError):
        return None  # a half-written record: its writer died before fsync; nobody holds it
    return record if isinstance(record, dict) else None


def _alive(holder: Dict[str, Any], ttl_s: float, path: str) -> bool:
    """Whether the recorded holder still holds the lock although its flock is gone."""
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        if not isinstance(pid, int) or not pid_alive(pid):
            return False
        start = holder.get("proc_start")
        return start is None or _proc_start(pid) in (None, start)  # None: not Linux
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return False
    return age < ttl_s


def _held(target: str, path: str, holder: Optional[Dict[str, Any]]) -> LockHeldError:
    h = holder or {}
    who = (f"{h.get('purpose', 'a csp-tf writer')} (pid {h.get('pid', '?')} on host "
           f"{h.get('host', '?')}, started {h.get('started', '?')}, command: "
           f"{h.get('command', '?')})")
    return LockHeldError(
        f"{target!r} is being written by another process: {who}; lock file {path}. Wait for it "
        f"to finish or stop it; a lock whose holder has died is taken over automatically",
        h, path)


def _heartbeat(path: str, stop: threading.Event, every_s: float) -> None:
    while not stop.wait(max(every_s, 0.05)):
        try:
            os.utime(path)
        except OSError:
            pass


# ----- processes --------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_start(pid: int) -> Optional[int]:
    """The process's start time in clock ticks since boot (Linux); tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
