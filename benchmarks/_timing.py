"""Shared by the benchmark scripts: ``best_time(fn, repeats)``, the minimum wall time of ``fn()`` over repeats."""

from __future__ import annotations

import time


def best_time(fn, repeats: int, warmup: bool = False) -> float:
    """Minimum of ``repeats`` timings of ``fn()`` (seconds); one untimed call first if ``warmup``."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
