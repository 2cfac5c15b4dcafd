"""The host's process table, read from /proc: which processes a sandbox started, what they use, and
how to end all of them (children, grandchildren, and ones that left the session or double-forked)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
KILL_ROUNDS = 50
KILL_PAUSE_S = 0.02


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    threads: int
    zombie: bool


def process_table() -> dict[int, ProcessInfo]:
    """Every process the host shows us: pid -> (parent, thread count, ended but not reaped)."""
    table: dict[int, ProcessInfo] = {}
    for entry in _pids():
        try:
            stat = (PROC / str(entry) / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        table[entry] = ProcessInfo(pid=entry, ppid=int(fields[1]), threads=int(fields[17]),
                                   zombie=fields[0] in ("Z", "X"))
    return table


def living(pids: Iterable[int], table: dict[int, ProcessInfo]) -> set[int]:
    """The pids that still run (a killed process stays a zombie until its parent reaps it)."""
    return {pid for pid in pids if pid in table and not table[pid].zombie}


def descendants(roots: Iterable[int], table: dict[int, ProcessInfo]) -> set[int]:
    """The roots that still exist and every process below them."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found: set[int] = set()
    stack = [pid for pid in roots if pid in table]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, ()))
    return found


def marked_processes(marker: str, table: dict[int, ProcessInfo]) -> set[int]:
    """Processes whose environment holds `marker` (an orphan that left its session keeps it)."""
    needle = marker.encode()
    found = set()
    for pid in table:
        try:
            if needle in (PROC / str(pid) / "environ").read_bytes():
                found.add(pid)
        except OSError:
            continue
    return found


def private_memory_bytes(pids: Iterable[int]) -> int:
    """Resident memory the processes do not share with files: a cheap upper bound (a forked
    child counts its parent's copy-on-write pages again)."""
    total = 0
    for pid in pids:
        try:
            resident, shared = (PROC / str(pid) / "statm").read_text().split()[1:3]
        except (OSError, ValueError):
            continue
        total += max(0, int(resident) - int(shared)) * PAGE_BYTES
    return total


def proportional_memory_bytes(pids: Iterable[int]) -> int:
    """Anonymous memory with shared pages split between their users (Pss_Anon): exact, slower."""
    total = 0
    for pid in pids:
        try:
            lines = (PROC / str(pid) / "smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        values = {line.split(":")[0]: line.split()[1] for line in lines if ":" in line}
        kib = values.get("Pss_Anon")
        if kib is None:  # kernels before 5.8: no split by kind
            kib = values.get("Pss", "0")
        total += int(kib) * 1024
    return total


def shared_memory_bytes(pids: Iterable[int]) -> int:
    """Shared memory the processes hold, which anonymous figures leave out: memfd files they
    hold open (each file once, mapped or not) plus the shared pages they map (RssShmem; a mapped
    memfd that is also open is counted twice, an upper bound on purpose)."""
    files: dict[tuple[int, int], int] = {}
    mapped = 0
    for pid in pids:
        fd_dir = PROC / str(pid) / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                if not os.readlink(fd_dir / name).startswith("/memfd:"):
                    continue
                info = os.stat(fd_dir / name)
            except OSError:
                continue
            files[(info.st_dev, info.st_ino)] = info.st_blocks * 512
        mapped += _status_kib(pid, "RssShmem") * 1024
    return sum(files.values()) + mapped


def data_bytes(pid: int) -> int:
    """The process's data size (VmData: what RLIMIT_DATA bounds, touched or not)."""
    return _status_kib(pid, "VmData") * 1024


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def kill_processes(find: Callable[[], set[int]]) -> int:
    """SIGKILL whatever `find()` returns until it returns nothing; how many were killed.

    Several rounds, because a process may fork between our look and our kill."""
    killed: set[int] = set()
    for _ in range(KILL_ROUNDS):
        pids = find() - {os.getpid()}
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(KILL_PAUSE_S)
    return len(killed)


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return []
