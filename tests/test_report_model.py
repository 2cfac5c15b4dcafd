"""The typed report model and its codec: an executor's new facts flow through with no code change,
and files written by older or newer graders load (missing keys defaulted, unknown ones kept)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from grader.execute.base import CellRun, ExecutionSummary
from grader.observe.execution import CellProblem, ExecutionReport
from grader.observe.observations import Observations

BASE = dict(submission="alice", notebook="alice.ipynb", notebook_sha256="ab", rubric_sha256="cd", seed=1,
            seed_policy="fixed", status="executed", grader_version="0.1.0")


@dataclass(frozen=True)
class WiderSummary(ExecutionSummary):
    """ExecutionSummary as another change may grow it: plain new facts."""

    probe_budget_s: float = 12.5
    threads_left_running: tuple[str, ...] = ("worker-1",)


def test_execution_report_is_built_from_the_cells() -> None:
    cells = (CellRun(0, "ok"), CellRun(1, "error", 0.2, "ValueError", "bad", "raise ValueError"),
             CellRun(2, "timeout", 3.0, message="slow", dropped_output_bytes=10), CellRun(3, "kernel_died"),
             CellRun(4, "not_run"))
    report = ExecutionReport.from_summary(ExecutionSummary(5.0, cells, kernel_died=True, kernel_died_at_cell=3,
                                                           sandbox={"bubblewrap": True, "cgroup": "v2"}))
    assert (report.cells_total, report.cells_ok) == (5, 1)
    assert report.failed_cells == (CellProblem(1, "ValueError", "bad", "raise ValueError", 0.2),)
    assert [c.index for c in report.timed_out_cells] == [2]
    assert (report.not_run_cells, report.output_capped_cells) == ((4,), (2,))
    assert (report.problem_cells(), report.unfinished_cells()) == ((1, 2), (3, 4))
    assert report.sandbox.bubblewrap and report.sandbox.other == {"cgroup": "v2"}
    assert report.to_dict()["sandbox"] == {"bubblewrap": True, "network_isolated": False, "filesystem_isolated": False,
                                           "pid_namespace": False, "process_limit": "", "problem": "",
                                           "cgroup": "v2"}


def test_a_new_field_of_the_executors_summary_reaches_the_report_json_unchanged() -> None:
    report = ExecutionReport.from_summary(WiderSummary(1.0, (CellRun(0, "ok"),)))
    data = report.to_dict()
    assert data["probe_budget_s"] == 12.5 and data["threads_left_running"] == ["worker-1"]
    assert ExecutionReport.from_dict(json.loads(json.dumps(data))) == report
    assert report["probe_budget_s"] == 12.5  # the dict view older callers use


def test_observations_from_an_older_and_a_newer_grader_both_load() -> None:
    text = Observations(execution=ExecutionSummary(1.0, (CellRun(0, "ok"),)), **BASE).to_json()
    older = json.loads(text)
    del older["execution"]["sandbox"], older["execution"]["cells"][0]["dropped_output_bytes"]
    newer = json.loads(text)
    newer["execution"]["cgroup_memory_peak_mb"] = 812
    newer["execution"]["cells"][0]["replaced_functions"] = ["torch.allclose"]
    for data in (older, newer):
        loaded = Observations.from_json(json.dumps(data))
        assert loaded.execution.cells == (CellRun(0, "ok"),) and loaded.execution.sandbox == {}


def test_an_execution_block_missing_keys_takes_the_defaults() -> None:
    report = ExecutionReport.from_dict({"seconds": 2, "failed_cells": [{"index": 4}]})
    assert report.seconds == 2.0 and isinstance(report.seconds, float)
    assert report.failed_cells == (CellProblem(4),) and report.warnings == () and not report.kernel_died
