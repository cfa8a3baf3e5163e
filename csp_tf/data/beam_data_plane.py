"""A fix for Beam's buffered data-plane streams, which lose writes made during a timed flush.

Beam's portable runners (the DirectRunner's ``multi_processing`` and ``multi_threading`` modes,
and any runner whose data channel has ``data_buffer_time_limit_ms`` > 0) send each bundle's
elements through ``data_plane.TimeBasedBufferingClosableOutputStream``. A background thread
flushes that buffer every second: it reads the buffer, hands the bytes to the gRPC send queue and
then clears it, holding a lock that the writers never take. Bytes written by the main thread
between the read and the clear are cleared without being sent: whole elements vanish with no
error. The FnApiRunner writes a stage's input to its workers in element-aligned chunks in a tight
loop and never flushes on size, so with a large stage input the buffer grows to hundreds of MB,
the flush's copy takes long enough for writes to land inside it, and batches of rows disappear
(apache-beam 2.59; ``tests/csp_tf/data/test_beam_data_plane.py`` reproduces it in isolation).

``install()`` makes every write to those streams take the flush lock (made re-entrant, since
Cython's writers call one another), so a flush and a write never interleave. It is idempotent and
only touches that class; the one-process ``in_memory`` mode (csp-tf's ingest default) never uses
it.
"""

from __future__ import annotations

import functools
import threading

WRITE_METHODS = ("write", "write_byte", "write_var_int64", "write_bigendian_int64",
                 "write_bigendian_uint64", "write_bigendian_int32", "write_bigendian_int16",
                 "write_bigendian_double", "write_bigendian_float")
_MARK = "_csp_tf_writes_locked"


def install() -> bool:
    """Patches ``TimeBasedBufferingClosableOutputStream``; False if it was patched already."""
    from apache_beam.runners.worker import data_plane

    cls = data_plane.TimeBasedBufferingClosableOutputStream
    if getattr(cls, _MARK, False):
        return False
    # The base __init__ assigns a plain Lock before it starts the flush thread; the property
    # ignores that and hands every user (flush, close, the writes) one re-entrant lock.
    cls._flush_lock = property(_instance_lock, lambda self, value: None)
    for name in WRITE_METHODS:
        setattr(cls, name, _locked(getattr(cls, name)))
    setattr(cls, _MARK, True)
    return True


def _instance_lock(stream) -> threading.RLock:
    lock = stream.__dict__.get("_csp_tf_lock")
    if lock is None:  # dict.setdefault is atomic: two first callers get the same lock
        lock = stream.__dict__.setdefault("_csp_tf_lock", threading.RLock())
    return lock


def _locked(method):
    @functools.wraps(method)
    def write(self, *args, **kwargs):
        with self._flush_lock:
            return method(self, *args, **kwargs)

    return write
