"""How running one notebook went, as checks, reports and every view read it: the typed
`execution` block of a report, built in one place (`ExecutionReport.from_summary`) from the
executor's `ExecutionSummary`.

An executor may record more facts than these fields name (a new field of ExecutionSummary):
they are kept in `other` and written to the report's JSON beside the named ones, so adding a
fact needs no change here; name it here when a view is to read it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from grader.execute.base import CellRun, ExecutionSummary
from grader.jsondata import from_data, to_data


@dataclass(frozen=True)
class CellProblem:
    """A code cell that raised or timed out; `index` counts notebook cells from 0, as nbformat."""

    index: int
    error: str | None = None
    message: str | None = None
    source_excerpt: str = ""
    seconds: float = 0.0

    @staticmethod
    def of(cell: CellRun) -> CellProblem:
        return CellProblem(cell.index, cell.error, cell.message, cell.source_excerpt, cell.seconds)


@dataclass(frozen=True)
class SandboxReport:
    """The isolation the notebook ran under (see README, Threat model); `problem` when missing."""

    bubblewrap: bool = False
    network_isolated: bool = False
    filesystem_isolated: bool = False
    pid_namespace: bool = False
    process_limit: str = ""
    problem: str = ""
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionReport:
    """Cells (counts, and the ones that failed, timed out, did not run or had their output cut),
    the limits that stopped the notebook, its sandbox and the grader's warnings."""

    seconds: float = 0.0
    cells_total: int = 0
    cells_ok: int = 0
    failed_cells: tuple[CellProblem, ...] = ()
    timed_out_cells: tuple[CellProblem, ...] = ()
    not_run_cells: tuple[int, ...] = ()
    output_capped_cells: tuple[int, ...] = ()
    kernel_died: bool = False
    kernel_died_at_cell: int | None = None
    kernel_exit_code: int | None = None
    notebook_timed_out: bool = False
    limit_exceeded: str | None = None  # memory | processes | disk | cpu | file
    torch_threads: int = 1
    warnings: tuple[str, ...] = ()
    sandbox: SandboxReport = field(default_factory=SandboxReport)
    other: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_summary(summary: ExecutionSummary) -> ExecutionReport:
        cells = summary.cells
        facts = {f.name: getattr(summary, f.name) for f in dataclasses.fields(summary) if f.name != "cells"}
        derived = {
            "cells_total": len(cells),
            "cells_ok": sum(1 for c in cells if c.status == "ok"),
            "failed_cells": [to_data(CellProblem.of(c)) for c in cells if c.status == "error"],
            "timed_out_cells": [to_data(CellProblem.of(c)) for c in cells if c.status == "timeout"],
            "not_run_cells": [c.index for c in cells if c.status == "not_run"],
            "output_capped_cells": [c.index for c in cells if c.dropped_output_bytes],
        }
        return ExecutionReport.from_dict({**to_data(facts), **derived})

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ExecutionReport:
        return from_data(ExecutionReport, data)

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)

    def __getitem__(self, key: str) -> Any:
        """The block as its JSON reads (`execution["failed_cells"][0]["error"]`), for code written
        against the dict the report held before; new code reads the fields."""
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_dict().get(key, default)

    def troubled(self) -> bool:
        """Whether a cell raised or timed out, or the kernel died: worth a look at the report."""
        return bool(self.failed_cells or self.timed_out_cells or self.kernel_died)

    def problem_cells(self) -> tuple[int, ...]:
        """Cells that raised or timed out, in notebook order."""
        return tuple(sorted(c.index for c in (*self.failed_cells, *self.timed_out_cells)))

    def unfinished_cells(self) -> tuple[int, ...]:
        """Cells that did not run to the end: the one the kernel died in, and those never run."""
        died = () if self.kernel_died_at_cell is None else (self.kernel_died_at_cell,)
        return tuple(sorted({*died, *self.not_run_cells}))
