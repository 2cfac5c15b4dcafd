"""Resource limits of a sandbox: rlimits set inside it before the kernel starts, and a watch from
outside that stops the whole sandbox when memory, processes or disk use go over the rubric's limits.

Why both: rlimits are per process (an oversized allocation fails cleanly with MemoryError, a
runaway file stops growing), but a notebook may start many processes, and RLIMIT_NPROC is not
enforced for root. With a cgroup (cgroups.py) the kernel counts every page of the sandbox, shared
memory and tmpfs files included, and the watch only notices that the group ran out of memory and
stops the sandbox, naming the limit. Without one, the watch sums over every process of the
sandbox (anonymous memory, plus shared memory it maps or holds as memfd files) and needs no
privilege. Disk: the watch measures everything under the sandbox's root (working directories,
socket folders, kernel logs), which is every host folder a kernel can write.
RLIMIT_AS is not used: the PyPI torch build maps about 3 GB of address space at import.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.execute.cgroups import Cgroup
from grader.execute.processes import (
    living,
    private_memory_bytes,
    process_table,
    proportional_memory_bytes,
    shared_memory_bytes,
)
from grader.rubric.model import ExecutionLimits

MB = 1024 * 1024
WATCH_INTERVAL_S = 0.25
DISK_EVERY = 4  # the working directory is measured every DISK_EVERY-th round
MAX_WORKDIR_ENTRIES = 200_000
CPU_GRACE_S = 5

MEMORY_BREACH = ("the notebook went over its memory limit of {limit:,} MB (its processes used "
                 "{used:,} MB), so the kernel was stopped")
CGROUP_MEMORY_BREACH = ("the notebook went over its memory limit of {limit:,} MB (counting everything "
                        "its processes held, shared memory and files in memory included), so the "
                        "kernel was stopped")
PROCESS_BREACH = ("the notebook went over its limit of {limit:,} processes and threads (it had "
                  "{used:,}), so the kernel was stopped")
DISK_BREACH = ("the notebook wrote more than its limit of {limit:,} MB into its folders "
               "({used:,} MB), so the kernel was stopped")
ENTRIES_BREACH = ("the notebook created more than {limit:,} files in its folders, so "
                  "the kernel was stopped")
CPU_LIMIT = ("the kernel used up its CPU time limit of {limit:g} s and was stopped")
FILE_LIMIT = ("a file the notebook wrote reached the limit of {limit:,} MB per file")
MEMORY_ERROR_NOTE = " (the notebook reached its memory limit of {limit:,} MB)"

# Run by the kernel's own interpreter inside the sandbox: set the limits, then become the kernel.
RLIMIT_SHIM = """\
import json, os, resource, sys
for name, (soft, hard) in json.loads(sys.argv[1]).items():
    resource.setrlimit(getattr(resource, name), (soft, hard))
os.execv(sys.argv[2], sys.argv[2:])
"""

MEMORY_ERRORS = ("MemoryError",)
MEMORY_ERROR_TEXT = ("can't allocate memory", "Cannot allocate memory", "out of memory",
                     "could not allocate", "MemoryError",
                     # the dynamic loader's mmap refused (an import in a kernel left full)
                     "failed to map segment from shared object")
# A write refused for lack of space: a full disk or tmpfs, or shared memory (memfd, /dev/shm)
# refused at the memory limit (a cgroup may refuse such a write instead of stopping the kernel).
NO_SPACE_TEXT = ("No space left on device",)


@dataclass(frozen=True)
class LimitBreach:
    """Why the watch stopped a sandbox. limit: memory | processes | disk."""

    limit: str
    message: str


def rlimits(limits: ExecutionLimits, bound_processes: bool) -> dict[str, tuple[int, int]]:
    """The rlimits for the kernel. RLIMIT_NPROC counts every process of the user, so it is set
    only where the kernel has a user namespace of its own (`bound_processes`)."""
    values = {
        "RLIMIT_DATA": (limits.memory_limit_mb * MB,) * 2,
        "RLIMIT_CPU": (int(limits.cpu_time_limit_s), int(limits.cpu_time_limit_s) + CPU_GRACE_S),
        "RLIMIT_FSIZE": (limits.max_file_mb * MB,) * 2,
        "RLIMIT_CORE": (0, 0),
    }
    if bound_processes:
        values["RLIMIT_NPROC"] = (limits.max_processes,) * 2
    return values


NO_RLIMITS = ("no per-process limits (Python's resource module does not exist on this system, e.g. "
              "Windows): only the time limits and the watch from outside apply")


def rlimits_available() -> bool:
    """Whether this Python can set rlimits (not on Windows)."""
    try:
        import resource  # noqa: F401
    except ImportError:
        return False
    return True


def sandbox_python() -> str:
    """This interpreter by a path that exists inside the sandbox: its folder resolved (the sandbox
    binds real paths, so a venv reached through a symlink would not be found), its own name kept
    (a venv's `python` is itself a link to the base interpreter; resolving it would leave the venv)."""
    return os.path.join(os.path.realpath(os.path.dirname(sys.executable)), os.path.basename(sys.executable))


def limited_command(argv: list[str], limits: ExecutionLimits, bound_processes: bool) -> list[str]:
    """`argv` started through the shim that sets the rlimits first (same interpreter as argv[0]);
    `argv` itself where there are no rlimits (NO_RLIMITS)."""
    if not rlimits_available():
        return list(argv)
    return [sandbox_python(), "-I", "-S", "-c", RLIMIT_SHIM,
            json.dumps(rlimits(limits, bound_processes)), *argv]


def describe_exit(code: int | None, limits: ExecutionLimits) -> LimitBreach | None:
    """The limit an exit code means, if any (death by signal: -signal from Popen, or 128 + signal
    as bubblewrap reports it)."""
    import signal

    if code is None:
        return None
    signum = -code if code < 0 else code - 128 if code > 128 else None
    if signum == signal.SIGXCPU:
        return LimitBreach("cpu", CPU_LIMIT.format(limit=limits.cpu_time_limit_s))
    if signum == signal.SIGXFSZ:
        return LimitBreach("file", FILE_LIMIT.format(limit=limits.max_file_mb))
    return None


def is_memory_error(error: str | None, message: str | None) -> bool:
    """Does this error (a cell's `ename` and `evalue`, or a probe's message) mean memory ran out?
    MemoryError, and torch's "DefaultCPUAllocator: can't allocate memory" / "could not allocate"."""
    text = message or ""
    return error in MEMORY_ERRORS or any(hint in text for hint in MEMORY_ERROR_TEXT)


def is_no_space_error(message: str | None) -> bool:
    return any(hint in (message or "") for hint in NO_SPACE_TEXT)


def explain_error(error: str | None, message: str | None, limits: ExecutionLimits) -> str | None:
    """The cell's error message, with a note when the error means the memory limit was reached."""
    text = message or ""
    if is_memory_error(error, message):
        return text + MEMORY_ERROR_NOTE.format(limit=limits.memory_limit_mb)
    return message


def directory_usage(root: Path, max_entries: int = MAX_WORKDIR_ENTRIES) -> tuple[int, int]:
    """(bytes on disk, entries) under `root`; stops counting entries past `max_entries`."""
    used, entries = 0, 0
    stack = [root]
    while stack and entries <= max_entries:
        try:
            with os.scandir(stack.pop()) as listing:
                for entry in listing:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError:
            continue
    return used, entries


class ResourceWatch:
    """A thread that measures a sandbox's processes and working directory a few times a second
    and calls `on_breach` once (then stops) when a limit is exceeded."""

    def __init__(self, members: Callable[[dict], set[int]], root: Path, limits: ExecutionLimits,
                 on_breach: Callable[[LimitBreach], None], cgroup: Cgroup | None = None) -> None:
        self.members = members
        self.root = root
        self.limits = limits
        self.cgroup = cgroup
        self.on_breach = on_breach
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sandbox-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        rounds = 0
        while not self._stop.wait(WATCH_INTERVAL_S):
            rounds += 1
            breach = self.measure(disk=rounds % DISK_EVERY == 0)
            if breach is not None:
                self.on_breach(breach)

    def measure(self, disk: bool = True) -> LimitBreach | None:
        """One round of measurement; the breach found, if any."""
        limits = self.limits
        table = process_table()
        pids = living(self.members(table), table)
        threads = sum(table[pid].threads for pid in pids)
        if threads > limits.max_processes:
            return LimitBreach("processes", PROCESS_BREACH.format(limit=limits.max_processes, used=threads))
        breach = self._measure_memory(pids)
        if breach is not None:
            return breach
        if disk:
            used, entries = directory_usage(self.root)
            if entries > MAX_WORKDIR_ENTRIES:
                return LimitBreach("disk", ENTRIES_BREACH.format(limit=MAX_WORKDIR_ENTRIES))
            if used > limits.max_workdir_mb * MB:
                return LimitBreach("disk", DISK_BREACH.format(limit=limits.max_workdir_mb,
                                                              used=used // MB))
        return None

    def _measure_memory(self, pids: set[int]) -> LimitBreach | None:
        limits = self.limits
        if self.cgroup is not None:  # the kernel enforces the limit; notice when it was reached
            if self.cgroup.out_of_memory():
                return LimitBreach("memory", CGROUP_MEMORY_BREACH.format(limit=limits.memory_limit_mb))
            return None
        limit_bytes = limits.memory_limit_mb * MB
        shared = shared_memory_bytes(pids)
        if private_memory_bytes(pids) + shared > limit_bytes:  # cheap bound first, exact figure to decide
            used = proportional_memory_bytes(pids) + shared
            if used > limit_bytes:
                return LimitBreach("memory", MEMORY_BREACH.format(
                    limit=limits.memory_limit_mb, used=used // MB))
        return None
