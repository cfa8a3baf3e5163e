"""Full disks: recognising ENOSPC, saying where and how much, and checking space beforehand.

A writer that runs out of space fails with :class:`DiskFullError`, whose message names the path
being written, the bytes it needed (when known) and the bytes free on that file system, and
says what was kept. Writers stage their output under a temporary name and rename it into place
only when complete (``write_atomic``, the ingest's staging sibling, the export's temporary
version directory), so what a full disk leaves behind is never taken for a finished artifact.
"""

from __future__ import annotations

import errno
import os
from typing import Optional

DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How the errors read once they have crossed TensorFlow's C++ file layer or a Beam worker's
# traceback text (strerror of ENOSPC / EDQUOT).
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


class DiskFullError(OSError):
    """No space left where csp-tf was writing; the message names the path and the space."""

    def __init__(self, message: str, path: str = "", need: Optional[int] = None,
                 free: Optional[int] = None):
        super().__init__(errno.ENOSPC, message)
        self.message, self.path, self.need, self.free = message, path, need, free

    def __str__(self) -> str:
        return self.message


def is_disk_full(exc: BaseException) -> bool:
    """True if ``exc`` or an exception it was raised from is ENOSPC / EDQUOT (an ``OSError``
    with that errno, or a TensorFlow / Beam error whose text is that errno's message)."""
    seen = set()
    cur: Optional[BaseException] = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in DISK_FULL_ERRNOS:
            return True
        if mentions_disk_full(str(cur)):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def mentions_disk_full(text: str) -> bool:
    return any(t in text for t in _DISK_FULL_TEXT)


def free_bytes(path: str) -> Optional[int]:
    """Bytes an unprivileged writer may still use on the file system holding ``path`` (or its
    nearest existing ancestor); None where it cannot be asked (e.g. ``gs://``)."""
    if "://" in path:
        return None
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def tree_size(path: str) -> int:
    """Bytes of the regular files under ``path`` (0 if it does not exist)."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def human(n: Optional[int]) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def disk_full_message(what: str, path: str, need: Optional[int] = None,
                      free: Optional[int] = None, kept: str = "", written: Optional[int] = None,
                      before: bool = False) -> str:
    """One line: what ran out of space where (``before``: would, checked before writing),
    needed vs free, what was kept, what to do."""
    free = free_bytes(path) if free is None else free
    parts = [f"{what}: not enough disk space at {path!r}, nothing was written" if before else
             f"{what} ran out of disk space writing {path!r} (No space left on device)"]
    if need is not None:
        parts.append(f"it needs about {human(need)} ({need} bytes)")
    if written is not None:
        parts.append(f"{human(written)} ({written} bytes) had been written when the disk filled")
    parts.append(f"{human(free)} ({free} bytes) free there" if free is not None
                 else "free space unknown")
    if kept:
        parts.append(kept)
    parts.append("free some space or write elsewhere, then run again")
    return "; ".join(parts)


def disk_full_error(exc: BaseException, what: str, path: str, need: Optional[int] = None,
                    kept: str = "", written: Optional[int] = None) -> Optional[DiskFullError]:
    """A :class:`DiskFullError` for ``exc`` if it is a full disk, else None."""
    if not is_disk_full(exc):
        return None
    free = free_bytes(path)
    return DiskFullError(disk_full_message(what, path, need, free, kept, written), path, need, free)


def check_free_space(path: str, need: int, what: str, kept: str = "") -> None:
    """Raises :class:`DiskFullError` before writing when ``path``'s file system has less than
    ``need`` bytes free (nothing is checked where the free space is unknown)."""
    free = free_bytes(path)
    if free is not None and free < need:
        raise DiskFullError(disk_full_message(what, path, need, free, kept, before=True), path,
                            need, free)


def write_atomic(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary sibling, fsync and rename: a reader sees
    the old file or the whole new one. On failure the temporary file is removed."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def fsync_tree(root: str) -> None:
    """fsyncs every file and directory under ``root``: a crash after the rename that publishes
    it must not leave a published artifact whose files were still only in the page cache."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(dirpath)


def fsync_dir(path: str) -> None:
    """Makes a rename inside ``path`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def checkpoint_disk_full(exc: BaseException, directory: str,
                         latest: Optional[str]) -> Optional[DiskFullError]:
    """A :class:`DiskFullError` for a checkpoint save that hit a full disk (else None).

    TensorFlow writes a checkpoint into ``<prefix>_temp/`` and replaces the ``checkpoint``
    state file only after the data and index are complete, so the state file still names
    ``latest``; the ``*_temp`` directories the failed save left are removed here. The space
    needed is about the size of ``latest``'s files (None before the first checkpoint).
    """
    if not is_disk_full(exc):
        return None
    for name in (os.listdir(directory) if os.path.isdir(directory) else ()):
        if name.endswith("_temp") and os.path.isdir(os.path.join(directory, name)):
            import shutil

            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    need = None
    if latest:
        parent, base = os.path.split(latest)
        need = sum(os.path.getsize(os.path.join(parent, n)) for n in os.listdir(parent)
                   if n.startswith(base + "."))
    kept = (f"the last complete checkpoint {latest} is kept and a rerun resumes from it"
            if latest else "no checkpoint had been written yet")
    return error_for(exc, "the checkpoint save", directory, need, kept)


def error_for(exc: BaseException, what: str, path: str, need: Optional[int],
              kept: str) -> DiskFullError:
    free = free_bytes(path)
    return DiskFullError(disk_full_message(what, path, need, free, kept), path, need, free)
