"""Timing helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import time
from typing import Callable


def best_seconds(fn: Callable[[], object], rounds: int, min_seconds: float = 0.2) -> float:
    """Best per-call time over ``rounds`` rounds of enough calls to last ``min_seconds``; the
    first call (tracing, warm-up) is not timed."""
    fn()
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        fn()
        calls += 1
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best
