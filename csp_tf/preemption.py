"""Preemption: SIGTERM stops a training stage at the next step boundary, with a checkpoint.

Kubernetes, spot / preemptible VMs and Vertex AI stop a job with SIGTERM and, a grace period
later (30 s by default on Kubernetes), SIGKILL. Python's default is to die at once, losing every
step since the last checkpoint. While a stage runs (``pretrain`` / ``finetune``, decorated with
:func:`stops_on_termination`), SIGTERM only sets a flag; ``run_epochs`` checks it between steps,
saves a checkpoint and returns, and the stage raises :class:`Preempted` naming the checkpoint.
The ``csp-tf`` training commands print that message and exit with :data:`PREEMPTED_EXIT_CODE`;
re-running the same command resumes from the checkpoint and ends with exactly the weights of an
uninterrupted run.

A step is never cut short (TensorFlow runs it in C++; Python sees the signal when it returns),
so the grace period must exceed one step plus one checkpoint write. Handlers are installed only
from the main thread (Python's rule); elsewhere the stage runs with the process's own handling.
Under ``MultiWorkerMirroredStrategy`` the save is collective: every worker must get the signal
(as when the job's pods are deleted), or the signalled one waits for the others at the save.
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from typing import Callable, Dict, Optional, Tuple, TypeVar

log = logging.getLogger("csp_tf")

# sysexits.h EX_TEMPFAIL: "a temporary failure; the user is invited to retry". Distinct from 0
# (done), 1 (a crash), 2 (a user error) and 143 (killed by SIGTERM without a checkpoint).
PREEMPTED_EXIT_CODE = 75
SIGNALS: Tuple[int, ...] = (signal.SIGTERM,)

_pending: Optional[int] = None  # the signal received and not yet acted on
_depth = 0  # nesting of stops_on_termination (finetune inside an experiment, ...)
_previous: Dict[int, object] = {}

F = TypeVar("F", bound=Callable)


class Preempted(Exception):
    """A stage stopped on SIGTERM after saving a checkpoint; re-running it resumes."""

    def __init__(self, message: str, *, stage: str, signal_name: str,
                 checkpoint: Optional[str]):
        super().__init__(message)
        self.stage, self.signal_name, self.checkpoint = stage, signal_name, checkpoint


def requested() -> Optional[str]:
    """The name of the stop signal received (``"SIGTERM"``), or None."""
    return None if _pending is None else signal.Signals(_pending).name


def consume() -> Optional[str]:
    """:func:`requested`, then forgets the signal (it has been acted on)."""
    global _pending
    name, _pending = requested(), None
    return name


def _on_signal(signum, frame) -> None:  # noqa: ARG001 - the signal module's signature
    global _pending
    if _pending is None:
        log.warning("%s received: saving a checkpoint at the next step boundary, then stopping",
                    signal.Signals(signum).name)
    _pending = signum


def _install() -> bool:
    global _depth
    if threading.current_thread() is not threading.main_thread():
        return False
    if _depth == 0:
        for sig in SIGNALS:
            _previous[sig] = signal.signal(sig, _on_signal)
    _depth += 1
    return True


def _uninstall() -> None:
    global _depth
    _depth -= 1
    if _depth == 0:
        for sig, handler in _previous.items():
            signal.signal(sig, handler)
        _previous.clear()


def stops_on_termination(stage: str) -> Callable[[F], F]:
    """Decorates a stage function: SIGTERM while it runs is turned into a checkpoint at the
    next step boundary (``run_epochs``) and :class:`Preempted`. A signal that arrives after the
    last step (while the stage saves its artifacts) still stops the process once the stage has
    returned everything to disk: :class:`Preempted` is raised then, instead of the result."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            installed, name = _install(), None
            try:
                result = fn(*args, **kwargs)
            finally:
                if installed:
                    _uninstall()
                    # The outermost stage owns the signal: forget it once the stage is over
                    # (also when it failed), so it cannot stop a later stage of this process.
                    name = consume() if _depth == 0 else None
            if name is not None:
                raise Preempted(f"{stage}: stopped by {name} after its last step; everything "
                                f"is saved (re-running the same command finds it finished)",
                                stage=stage, signal_name=name, checkpoint=None)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def preempted_message(stage: str, signal_name: str, epoch: int, step_in_epoch: int,
                      global_step: int, checkpoint: Optional[str]) -> str:
    where = (f"checkpoint {checkpoint} holds step {global_step}" if checkpoint else
             "no step had run, so there is no checkpoint yet")
    return (f"{stage}: stopped by {signal_name} at epoch {epoch + 1}, step {step_in_epoch} "
            f"(global step {global_step}); {where}. Re-run the same command (same output "
            "directory) to resume from it.")
