"""How many notebooks a batch grades at once, and how many torch threads each kernel gets.

`plan_parallelism` is pure (the machine comes in as a `Machine`); `this_machine()` reads the
usable cores (the CPU affinity mask) and the memory available (/proc/meminfo MemAvailable, or
less when a cgroup limit says so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"
# Memory kept for the grader's own process (reference model, data arrays, reports) when --jobs
# auto shares the available memory among kernels.
GRADER_MEMORY_MB = 1024
MEMINFO = Path("/proc/meminfo")
CGROUP_LIMITS = (  # (limit, usage) files of the cgroup v2 and v1 memory controllers
    (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current")),
    (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Path("/sys/fs/cgroup/memory/memory.usage_in_bytes")),
)
NO_LIMIT_BYTES = 1 << 60  # cgroup v1 writes "no limit" as a huge number

AUTO_REASON = ("--jobs auto: {jobs} at once, {threads} torch thread(s) each "
               "({cores} core(s); {memory}; {count})")
ASKED_REASON = "--jobs {asked}: {jobs} at once, {threads} torch thread(s) each ({cores} core(s){capped})"
MEMORY_WARNING = ("; {jobs} kernels may use up to {need} MB together but only {available} MB is available: "
                  "use --jobs auto or fewer jobs if the machine runs out of memory")


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_available_mb: int | None  # None: unknown (not Linux)


@dataclass(frozen=True)
class Parallelism:
    """The choice, and one sentence saying why (printed by the CLI, kept in the batch result)."""

    jobs: int
    torch_threads: int
    reason: str


def plan_parallelism(requested: int | str, cores: int, memory_available_mb: int | None,
                     memory_limit_mb: int, rubric_threads: int | None = None,
                     submissions: int | None = None) -> Parallelism:
    """Jobs and torch threads per kernel, with jobs x threads <= cores.

    requested: a number of jobs (capped at the cores), or "auto": as many kernels as the cores
    allow at one thread each (the rubric's `torch_threads` each when it sets them), as the
    available memory allows at the rubric's memory limit per kernel, and no more than there are
    submissions; the cores left over become torch threads."""
    cores = max(1, cores)
    threads_each = min(rubric_threads, cores) if rubric_threads else None
    if requested == AUTO:
        by_cores = cores // (threads_each or 1)
        by_memory = _jobs_by_memory(memory_available_mb, memory_limit_mb)
        jobs = max(1, min(by_cores, by_memory or by_cores, submissions or by_cores))
        threads = threads_each or max(1, cores // jobs)
        return Parallelism(jobs, threads, AUTO_REASON.format(
            jobs=jobs, threads=threads, cores=cores,
            memory=_memory_text(memory_available_mb, memory_limit_mb, by_memory),
            count="no notebooks" if submissions == 0 else
            f"{submissions} notebook(s)" if submissions is not None else "any number of notebooks"))
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        raise ValueError(f"jobs must be a positive number or {AUTO!r}, not {requested!r}")
    if threads_each:
        jobs = max(1, min(requested, cores // threads_each))
        threads = threads_each
    else:
        jobs = min(requested, cores)
        threads = max(1, cores // jobs)
    capped = f", so not {requested}" if jobs < requested else ""
    reason = ASKED_REASON.format(asked=requested, jobs=jobs, threads=threads, cores=cores, capped=capped)
    need = jobs * memory_limit_mb
    if memory_available_mb is not None and jobs > 1 and need > memory_available_mb - GRADER_MEMORY_MB:
        reason += MEMORY_WARNING.format(jobs=jobs, need=need, available=memory_available_mb)
    return Parallelism(jobs, threads, reason)


def _jobs_by_memory(available_mb: int | None, limit_mb: int) -> int | None:
    if available_mb is None:
        return None
    return max(1, (available_mb - GRADER_MEMORY_MB) // max(1, limit_mb))


def _memory_text(available_mb: int | None, limit_mb: int, by_memory: int | None) -> str:
    if available_mb is None:
        return "available memory unknown"
    return f"{available_mb} MB available, up to {limit_mb} MB per kernel: room for {by_memory}"


def this_machine() -> Machine:
    return Machine(usable_cores(), available_memory_mb())


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_memory_mb() -> int | None:
    """MemAvailable, or what a cgroup memory limit leaves when that is less; None if unknown."""
    found = []
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) // 1024)
    except (OSError, ValueError):
        pass
    for limit_file, usage_file in CGROUP_LIMITS:
        try:
            limit, usage = limit_file.read_text().strip(), int(usage_file.read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < NO_LIMIT_BYTES:
            found.append(max(0, int(limit) - usage) // (1024 * 1024))
    return min(found) if found else None
