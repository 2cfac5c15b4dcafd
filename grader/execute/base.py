"""The executor interface: run one submission, return what happened. Nothing here scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from grader.observe.probe import ProbeReply, ProbeRequest
from grader.rubric.model import DataSpec, ExecutionLimits


@dataclass(frozen=True)
class ExecutionJob:
    """Everything an executor needs to run one notebook and probe it."""

    submission_id: str
    notebook: dict[str, Any]
    data: DataSpec
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
    """The execution facts kept in observations and reports (JSON-able)."""

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
    memory_exhausted_at_cell: int | None = None  # the cell blamed for leaving the kernel full
    replayed_cells: tuple[int, ...] = ()  # cells run again in a fresh kernel before probing
    cell_seconds: float = 0.0  # the notebook's cells, every pass (they share notebook_timeout_s)
    probe_seconds: float = 0.0  # the probes (their own budget, probe_budget_s)

    def failed_cells(self) -> list[CellRun]:
        return [cell for cell in self.cells if cell.status == "error"]

    def timed_out_cells(self) -> list[CellRun]:
        return [cell for cell in self.cells if cell.status == "timeout"]


@dataclass
class ExecutionResult:
    summary: ExecutionSummary
    probe_replies: dict[str, ProbeReply] = field(default_factory=dict)
    executed_notebook: dict[str, Any] | None = None


class Executor(Protocol):
    """Runs one submission in isolation. Local kernels today; a kernel pool or a distributed
    engine later: both only need to turn an ExecutionJob into an ExecutionResult."""

    def run(self, job: ExecutionJob) -> ExecutionResult: ...
