"""--jobs auto and explicit --jobs: the pure choice of jobs and torch threads, on fake machines."""

from __future__ import annotations

import pytest

import grader.grade.parallelism as parallelism
from grader.grade.parallelism import AUTO, GRADER_MEMORY_MB, available_memory_mb, plan_parallelism

GB = 1024


def test_auto_runs_one_kernel_per_core_when_memory_allows():
    plan = plan_parallelism(AUTO, cores=8, memory_available_mb=64 * GB, memory_limit_mb=4 * GB)
    assert (plan.jobs, plan.torch_threads) == (8, 1)
    assert plan.reason.startswith("--jobs auto: 8 at once, 1 torch thread(s) each (8 core(s)")


def test_auto_is_limited_by_memory_and_gives_the_spare_cores_to_torch():
    # 9 GB available, 1 GB kept for the grader, 4 GB per kernel: room for 2 kernels of 4 threads.
    plan = plan_parallelism(AUTO, cores=8, memory_available_mb=9 * GB, memory_limit_mb=4 * GB)
    assert (plan.jobs, plan.torch_threads) == (2, 4)
    assert "9216 MB available, up to 4096 MB per kernel: room for 2" in plan.reason


def test_auto_runs_one_kernel_when_memory_is_short_rather_than_none():
    plan = plan_parallelism(AUTO, cores=4, memory_available_mb=2 * GB, memory_limit_mb=4 * GB)
    assert (plan.jobs, plan.torch_threads) == (1, 4)


def test_auto_starts_no_more_kernels_than_there_are_notebooks():
    plan = plan_parallelism(AUTO, cores=8, memory_available_mb=64 * GB, memory_limit_mb=4 * GB, submissions=3)
    assert (plan.jobs, plan.torch_threads) == (3, 2)
    assert "3 notebook(s)" in plan.reason
    single = plan_parallelism(AUTO, cores=2, memory_available_mb=64 * GB, memory_limit_mb=4 * GB, submissions=1)
    assert (single.jobs, single.torch_threads) == (1, 2)


def test_auto_with_no_notebooks_still_plans_one_job():
    plan = plan_parallelism(AUTO, cores=2, memory_available_mb=64 * GB, memory_limit_mb=4 * GB, submissions=0)
    assert plan.jobs >= 1 and plan.torch_threads >= 1


def test_auto_keeps_the_rubrics_torch_threads():
    plan = plan_parallelism(AUTO, cores=8, memory_available_mb=64 * GB, memory_limit_mb=4 * GB, rubric_threads=3)
    assert (plan.jobs, plan.torch_threads) == (2, 3)  # 2 x 3 <= 8 cores
    more_than_cores = plan_parallelism(AUTO, cores=2, memory_available_mb=64 * GB, memory_limit_mb=GB,
                                       rubric_threads=4)
    assert (more_than_cores.jobs, more_than_cores.torch_threads) == (1, 2)


def test_auto_with_unknown_memory_goes_by_the_cores():
    plan = plan_parallelism(AUTO, cores=2, memory_available_mb=None, memory_limit_mb=4 * GB)
    assert (plan.jobs, plan.torch_threads) == (2, 1)
    assert "available memory unknown" in plan.reason


def test_auto_on_this_2_core_machine_shape():
    # What `make grade` gets here: 2 cores, ~20 GB available, the default 4 GB limit.
    plan = plan_parallelism(AUTO, cores=2, memory_available_mb=20 * GB, memory_limit_mb=4 * GB, submissions=20)
    assert (plan.jobs, plan.torch_threads) == (2, 1)


@pytest.mark.parametrize(("asked", "cores", "expected"), [(1, 2, (1, 2)), (2, 2, (2, 1)), (4, 2, (2, 1)),
                                                          (3, 8, (3, 2)), (1, 1, (1, 1))])
def test_explicit_jobs_are_capped_at_the_cores_and_share_them(asked, cores, expected):
    plan = plan_parallelism(asked, cores=cores, memory_available_mb=64 * GB, memory_limit_mb=4 * GB)
    assert (plan.jobs, plan.torch_threads) == expected
    assert plan.reason.startswith(f"--jobs {asked}: {expected[0]} at once")
    assert ("so not" in plan.reason) == (expected[0] < asked)


def test_explicit_jobs_are_obeyed_with_a_warning_when_memory_may_not_suffice():
    plan = plan_parallelism(4, cores=4, memory_available_mb=6 * GB, memory_limit_mb=4 * GB)
    assert (plan.jobs, plan.torch_threads) == (4, 1)
    assert "4 kernels may use up to 16384 MB together but only 6144 MB is available" in plan.reason
    enough = plan_parallelism(2, cores=4, memory_available_mb=9 * GB + GRADER_MEMORY_MB, memory_limit_mb=4 * GB)
    assert "may use" not in enough.reason


def test_explicit_jobs_with_rubric_threads():
    plan = plan_parallelism(4, cores=4, memory_available_mb=None, memory_limit_mb=GB, rubric_threads=2)
    assert (plan.jobs, plan.torch_threads) == (2, 2)


@pytest.mark.parametrize("asked", [0, -1, "3", "many", True])
def test_jobs_must_be_positive_or_auto(asked):
    with pytest.raises(ValueError, match="positive number or 'auto'"):
        plan_parallelism(asked, cores=2, memory_available_mb=None, memory_limit_mb=GB)


def test_available_memory_is_memavailable_or_a_smaller_cgroup_allowance(monkeypatch, tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684000 kB\nMemFree:  100 kB\nMemAvailable:   20971520 kB\n")
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    monkeypatch.setattr(parallelism, "MEMINFO", meminfo)
    monkeypatch.setattr(parallelism, "CGROUP_LIMITS", ((limit, usage),))
    assert available_memory_mb() == 20 * GB  # no cgroup files
    limit.write_text("max\n")
    usage.write_text(str(GB * 1024 * 1024))
    assert available_memory_mb() == 20 * GB  # a cgroup without a limit
    limit.write_text(str(8 * GB * 1024 * 1024))
    assert available_memory_mb() == 7 * GB  # 8 GB limit, 1 GB used
    meminfo.unlink()
    assert available_memory_mb() == 7 * GB
    limit.unlink()
    assert available_memory_mb() is None


# ------------------------------------------------------------------ grade_batch with --jobs auto

class RecordingExecutor:
    """Runs nothing: records the torch threads each job was given."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def run(self, job):
        from grader.execute.base import CellRun, ExecutionResult, ExecutionSummary

        self.threads.append(job.torch_threads)
        summary = ExecutionSummary(seconds=0.01, cells=(CellRun(0, "ok", 0.01),), torch_threads=job.torch_threads)
        return ExecutionResult(summary=summary, executed_notebook=job.notebook)


def test_grade_batch_records_the_auto_choice_and_gives_it_to_every_kernel(tmp_path):
    import json
    from dataclasses import replace

    from grader.grade.api import grade_batch
    from grader.grade.parallelism import this_machine
    from grader.rubric.load import load_rubric
    from tests.support import DEFAULT_RUBRIC

    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                "cells": [{"cell_type": "code", "id": "a", "metadata": {}, "source": "x = 1",
                           "outputs": [], "execution_count": None}]}
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("ann", "bob", "cyd"):
        (folder / f"{name}.ipynb").write_text(json.dumps(notebook))
    full = load_rubric(DEFAULT_RUBRIC)  # its A1 checks only: scoring here needs no reference work
    rubric = replace(full, checks=tuple(c for c in full.checks if c.task == "A1"))
    executor = RecordingExecutor()
    seen = []
    result = grade_batch(folder, rubric, tmp_path / "out", jobs=AUTO, executor=executor, on_plan=seen.append)
    machine = this_machine()
    expected = plan_parallelism(AUTO, machine.cores, machine.memory_available_mb,
                                rubric.execution.memory_limit_mb, rubric.execution.torch_threads, 3)
    assert (result.jobs, result.torch_threads) == (expected.jobs, expected.torch_threads)
    assert [p.jobs for p in seen] == [result.jobs]
    assert result.parallelism == seen[0].reason and result.parallelism.startswith("--jobs auto:")
    assert executor.threads == [result.torch_threads] * 3
    assert "--jobs auto:" in result.log_file.read_text()
    # Each submission's timings are recorded (no kernel started here, so no kernel_start_s).
    assert set(result.timings["submissions"]) == {"ann", "bob", "cyd"}
    assert {"score_s", "write_s", "pages_s", "total_s"} <= set(result.timings["submissions"]["ann"])
    assert {"setup_s", "batch_files_s"} <= set(result.timings["batch"])
