"""Executors by name. A kernel pool or a distributed engine is a new entry here, nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from grader.execute.base import Executor
from grader.execute.dask_executor import open_dask_executor
from grader.execute.local import LocalKernelExecutor
from grader.rubric.model import DataSpec

EXECUTOR_NAMES = ("local", "dask")


@dataclass(frozen=True)
class ExecutorSetup:
    """An open executor and how many notebooks it runs at once (`slots`); `where` says on what."""

    executor: Executor
    slots: int
    where: str
    name: str = "local"


def make_executor(name: str) -> Executor:
    """An executor that needs no setup for a batch (local kernels)."""
    if name != "local":
        raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTOR_NAMES)}")
    return LocalKernelExecutor()


@contextmanager
def open_executor(name: str, jobs: int, data: DataSpec, scheduler: str | None = None) -> Iterator[ExecutorSetup]:
    """The executor for a batch, open for its duration: local kernels (`jobs` at once), or Dask
    workers on a new local cluster of `jobs` processes or on the cluster at `scheduler`."""
    if name == "local":
        if scheduler is not None:
            raise ValueError("--scheduler needs --executor dask")
        yield ExecutorSetup(LocalKernelExecutor(), jobs, "local kernels")
        return
    if name != "dask":
        raise ValueError(f"unknown executor {name!r}; known: {', '.join(EXECUTOR_NAMES)}")
    with open_dask_executor(jobs, data, scheduler) as (executor, info):
        kind = "a local Dask cluster" if info.local else "the Dask cluster"
        yield ExecutorSetup(executor, info.slots, f"{kind} at {info.address} ({info.workers} worker(s))", "dask")
