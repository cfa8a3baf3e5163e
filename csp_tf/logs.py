"""The one logging set-up of every csp-tf command (and scripts/demo.py): a quiet terminal.

The terminal shows our own lines (loggers ``csp_tf``, ``tfx_pipeline``, ``serving``), the
commands' results and their errors. Everything else goes to a log file whose path is printed
once: the Python logs of TensorFlow, absl, Beam and TFX, Python warnings (Google's
FutureWarnings), and whatever writes to file descriptor 2 directly: TensorFlow's C++ start-up
lines ("Unable to register cuFFT factory", "TF-TRT Warning"; the cuFFT/cuDNN/cuBLAS ones appear
even with ``TF_CPP_MIN_LOG_LEVEL=2``) and the Beam worker processes, which inherit fd 2. With
``verbose`` all of it is shown live as well. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from typing import Iterator, Optional

OURS = ("csp_tf", "tfx_pipeline", "serving")
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _TerminalFormatter(logging.Formatter):
    """``12:00:01 message``; a warning or an error also names its level."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(message)s", "%H:%M:%S")
        self._loud = logging.Formatter("%(asctime)s %(levelname)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return (super() if record.levelno < logging.WARNING else self._loud).format(record)


def default_log_file(command: str) -> str:
    """``$CSP_TF_LOG_DIR`` (default ``<tmp>/csp-tf-logs``) ``/<command>-<time>-<pid>.log``."""
    folder = os.environ.get("CSP_TF_LOG_DIR") or os.path.join(tempfile.gettempdir(), "csp-tf-logs")
    return os.path.join(folder, f"{command}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")


@contextlib.contextmanager
def command_output(command: str, verbose: bool = False, log_file: Optional[str] = None, *,
                   terminal_level: int = logging.INFO, announce: bool = True) -> Iterator[str]:
    """Routes logs for the duration of one command; yields the log file's path.

    Args:
      command: names the default log file.
      verbose: also show every log line, and TensorFlow's C++ output, on the terminal.
      log_file: where the detail goes (default :func:`default_log_file`); appended to.
      terminal_level: the least level of our own lines shown on the terminal (a command that
        prints its own progress, like ``experiment``, passes WARNING).
      announce: print ``logs: PATH`` once on stderr (off for commands whose stderr is parsed).

    Must be entered before TensorFlow is imported for ``TF_CPP_MIN_LOG_LEVEL`` to apply; the fd 2
    redirection catches the C++ lines either way. Everything is restored on exit, so a test can
    run several commands in one process.
    """
    path = os.path.abspath(log_file or default_log_file(command))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ INFO off; warnings reach the file
    log = open(path, "a", buffering=1)
    saved_stderr, saved_fd2 = sys.stderr, os.dup(2)
    terminal = saved_stderr
    if not verbose:
        try:
            on_fd2 = saved_stderr.fileno() == 2
        except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO
            on_fd2 = False
        if on_fd2:  # keep the terminal on a copy of fd 2, then point fd 2 at the log
            saved_stderr.flush()
            terminal = os.fdopen(os.dup(saved_fd2), "w", buffering=1)
        os.dup2(log.fileno(), 2)
        sys.stderr = terminal
    to_file = logging.StreamHandler(log)
    to_file.setFormatter(logging.Formatter(FILE_FORMAT))
    to_terminal = logging.StreamHandler(terminal)
    to_terminal.setFormatter(_TerminalFormatter())
    if not verbose:
        to_terminal.addFilter(lambda r: r.name.split(".")[0] in OURS and r.levelno >= terminal_level)
    root = logging.getLogger()
    saved_level = root.level
    for handler in (to_file, to_terminal):  # added beside any others (pytest's caplog)
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # warnings -> logger py.warnings -> the file
    if announce:
        print(f"logs: {path}" + ("" if verbose else " (-v shows them here)"), file=terminal,
              flush=True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        for handler in (to_file, to_terminal):
            root.removeHandler(handler)
        root.setLevel(saved_level)
        terminal.flush()
        log.flush()
        os.dup2(saved_fd2, 2)
        os.close(saved_fd2)
        sys.stderr = saved_stderr
        if terminal is not saved_stderr:
            terminal.close()
        log.close()


def for_args(args):
    """:func:`command_output` for a parsed command line (``-v``, ``--log-file`` and what the
    sub-command set with ``set_defaults(terminal_level=..., announce_log=...)``)."""
    return command_output(
        getattr(args, "command", None) or "csp-tf", bool(getattr(args, "verbose", False)),
        getattr(args, "log_file", None), terminal_level=getattr(args, "terminal_level", logging.INFO),
        announce=getattr(args, "announce_log", True))
