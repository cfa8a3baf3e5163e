"""Beam's timed data-plane buffer loses writes made during a flush; csp_tf.data.beam_data_plane
makes writes and flushes exclusive. A slow flush callback (a large buffer's copy into the gRPC
queue) opens the window that loses whole elements in the multi-worker DirectRunner modes."""

import subprocess
import sys
import textwrap
import time

# Writes chunks (raw and as nested, length-prefixed Cython coder writes) for `seconds` while a
# 5 ms periodic flush hands the buffer to a slow consumer; prints written and received bytes.
_WRITER = textwrap.dedent('''
    import sys, time
    from apache_beam.coders import coders
    from apache_beam.runners.worker import data_plane

    def run(seconds=0.5):
        received = []
        def slow(data):
            received.append(data)
            time.sleep(0.01)
        s = data_plane.TimeBasedBufferingClosableOutputStream(
            flush_callback=slow, close_callback=slow, time_flush_threshold_ms=5)
        written, coder, i = [], coders.BytesCoder().get_impl(), 0
        t0 = time.time()
        while time.time() - t0 < seconds:
            raw = i.to_bytes(4, "big") * 250
            s.write(raw)
            written.append(raw)
            coder.encode_to_stream(raw[:300], s, True)
            written.append(bytes([172, 2]) + raw[:300])  # var-int 300 + the bytes
            i += 1
            time.sleep(0.0001)
        s.close()
        return b"".join(written), b"".join(received)
''')


def _run_writer(install: bool):
    namespace = {}
    if install:
        from csp_tf.data import beam_data_plane
        beam_data_plane.install()
    exec(_WRITER, namespace)  # noqa: S102 - the fixed script above
    return namespace["run"]()


def test_beam_as_shipped_loses_writes_during_a_timed_flush():
    """The upstream behaviour the fix exists for (a fresh process: the fix patches a class)."""
    script = _WRITER + "\nw, r = run()\nprint(len(w), len(r))\n"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    written, received = map(int, out.stdout.split())
    assert received < written, (written, received)


def test_with_the_fix_every_byte_arrives_in_order():
    written, received = _run_writer(install=True)
    assert len(written) > 10_000
    assert received == written


def test_install_is_idempotent_and_the_ingest_installs_it():
    from apache_beam.runners.worker import data_plane
    from csp_tf.data import beam_data_plane
    from csp_tf.data.ingest import make_pipeline_options

    make_pipeline_options([], in_process=True)
    assert getattr(data_plane.TimeBasedBufferingClosableOutputStream,
                   beam_data_plane._MARK, False)
    assert beam_data_plane.install() is False


def test_a_flush_waits_for_a_write_in_progress():
    """The lock is the stream's own: a flush cannot run while another thread holds it."""
    import threading

    from apache_beam.runners.worker import data_plane
    from csp_tf.data import beam_data_plane

    beam_data_plane.install()
    got = []
    s = data_plane.TimeBasedBufferingClosableOutputStream(
        flush_callback=got.append, close_callback=got.append, time_flush_threshold_ms=1)
    with s._flush_lock:  # what a write holds while it appends
        s.write(b"abc")  # re-entrant: the write inside the held lock does not deadlock
        time.sleep(0.05)  # the 1 ms flusher is blocked meanwhile
        assert got == []
    s.close()
    assert b"".join(got) == b"abc"
    assert isinstance(s._flush_lock, type(threading.RLock()))
