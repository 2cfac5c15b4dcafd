"""Where one submission's grading time goes (kernel start, scoring, report writing), for the
batch's --json summary and the benchmark (bench/run.py). Phases are collected per thread: a
batch grades each submission in one worker thread, start to finish."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


@contextmanager
def collecting() -> Iterator[dict[str, float]]:
    """Collect the phases timed in this thread, until the block ends, into the dict it yields."""
    previous = getattr(_local, "phases", None)
    _local.phases = phases = {}
    try:
        yield phases
    finally:
        _local.phases = previous


def add(name: str, seconds: float) -> None:
    """Add `seconds` to phase `name` of the submission being graded in this thread (if any)."""
    phases = getattr(_local, "phases", None)
    if phases is not None:
        phases[name] = round(phases.get(name, 0.0) + seconds, 3)


@contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        add(name, time.monotonic() - started)
