"""The executor interface: run one submission, return what happened. Nothing here scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from grader.data.student_files import StudentFiles
from grader.observe.probe import ProbeReply, ProbeRequest
from grader.rubric.model import DataSpec, ExecutionLimits


@dataclass(frozen=True)
class ExecutionJob:
    """Everything an executor needs to run one notebook and probe it."""

    submission_id: str
    notebook: dict[str, Any]
    data: DataSpec | StudentFiles  # the rubric's source, or its files as bytes (remote workers)
    limits: ExecutionLimits
    torch_threads: int
    probes: tuple[ProbeRequest, ...]


@dataclass(frozen=True)
class CellRun:
    """One code cell: how its execution ended (ok, error, timeout, kernel_died, not_run)."""

    index: int
    status: str
    seconds: float = 0.0
    error: str | None = None
    message: str | None = None
    source_excerpt: str = ""
    dropped_output_bytes: int = 0


@dataclass(frozen=True)
class ExecutionSummary:
    """The execution facts kept in observations (JSON-able). Reports and checks read them as an
    ExecutionReport (grader/observe/execution.py), built from this; a new plain field here is
    saved, loaded and shown in the report's JSON with no other change."""

    seconds: float
    cells: tuple[CellRun, ...]
    kernel_died: bool = False
    kernel_died_at_cell: int | None = None
    kernel_exit_code: int | None = None
    notebook_timed_out: bool = False
    torch_threads: int = 1
    warnings: tuple[str, ...] = ()
    limit_exceeded: str | None = None  # memory | processes | disk | cpu | file, when a limit stopped it
    sandbox: dict[str, Any] = field(default_factory=dict)  # what isolation the notebook ran under
    # What the kernel preamble saw (grader/observe/kernel_preamble.py): library functions and
    # global state the probes restored, threads the notebook left running, data sets served.
    kernel: dict[str, Any] = field(default_factory=dict)
    executor: str = "local"  # which executor ran it (local | dask)
    worker: str = ""  # the Dask worker's address, when a cluster ran it
    memory_exhausted_at_cell: int | None = None  # the cell blamed for leaving the kernel full
    replayed_cells: tuple[int, ...] = ()  # cells run again in a fresh kernel before probing
    cell_seconds: float = 0.0  # the notebook's cells, every pass (they share notebook_timeout_s)
    probe_seconds: float = 0.0  # the probes (their own budget, probe_budget_s)



@dataclass
class ExecutionResult:
    summary: ExecutionSummary
    probe_replies: dict[str, ProbeReply] = field(default_factory=dict)
    executed_notebook: dict[str, Any] | None = None


class Executor(Protocol):
    """Runs one submission in isolation: local kernels, or a Dask cluster's workers. `run` may be
    called from several threads at once; `abort` (a batch was interrupted) stops every running
    notebook, after which `run` raises KeyboardInterrupt."""

    name: str

    def run(self, job: ExecutionJob) -> ExecutionResult: ...

    def abort(self) -> None: ...
