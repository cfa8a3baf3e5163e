"""Progress lines while ``LocalDagRunner`` runs: one when a component starts, one when it ends.

The runner announces each component through absl (``Component %s is running.`` / ``... is
finished.``), which ``csp_tf.logs`` sends to the log file only, so the terminal used to stay
silent for the minutes the Beam components take. ``component_progress`` listens for exactly
those two records (no MLMD polling: a second SQLite reader could lock the runner's writes) and
hands a short line to ``emit``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Callable, Dict, Iterator

RUNNING, FINISHED = "Component %s is running.", "Component %s is finished."
Emit = Callable[[str], None]


class _ComponentLines(logging.Handler):
    def __init__(self, total: int, emit: Emit):
        super().__init__(logging.INFO)
        self.total, self.emit_line = total, emit
        self.started: Dict[str, float] = {}
        self.t0 = time.time()

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg not in (RUNNING, FINISHED) or not record.args:
            return
        node = str(record.args[0])  # type: ignore[index]
        if record.msg == RUNNING:
            self.started[node] = record.created
            self.emit_line(f"pipeline: [{len(self.started)}/{self.total}] {node} running "
                           f"(+{record.created - self.t0:.0f} s)")
        else:
            took = record.created - self.started.get(node, record.created)
            self.emit_line(f"pipeline: {node} done in {took:.1f} s")


@contextlib.contextmanager
def component_progress(total: int, emit: Emit) -> Iterator[None]:
    """Within the block, each component start and end of ``total`` becomes a line to ``emit``.

    The absl logger's level is held at INFO or below for the block: every Beam executor parses
    absl flags (``BaseBeamExecutor``), which resets it to WARNING, and a record below the
    level is never created. Its INFO lines go where they went before (the log file).
    """
    absl_logger = logging.getLogger("absl")
    handler = _ComponentLines(total, emit)
    old_level = absl_logger.level

    def set_level(level) -> None:  # absl's own resets keep INFO records alive
        if isinstance(level, str):
            level = logging.getLevelName(level)
        logging.Logger.setLevel(absl_logger, min(level, logging.INFO) if level else level)

    if absl_logger.getEffectiveLevel() > logging.INFO:
        logging.Logger.setLevel(absl_logger, logging.INFO)
    absl_logger.setLevel = set_level  # type: ignore[method-assign]
    absl_logger.addHandler(handler)
    try:
        yield
    finally:
        absl_logger.removeHandler(handler)
        del absl_logger.setLevel  # the class's method again
        logging.Logger.setLevel(absl_logger, old_level)
