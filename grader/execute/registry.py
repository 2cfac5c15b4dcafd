"""Executors by name. A kernel pool or a distributed engine is a new entry here, nothing else."""

from __future__ import annotations

from collections.abc import Callable

from grader.execute.base import Executor
from grader.execute.local import LocalKernelExecutor

EXECUTORS: dict[str, Callable[[], Executor]] = {"local": LocalKernelExecutor}


def make_executor(name: str) -> Executor:
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}")
    return EXECUTORS[name]()
