"""A control group per sandbox: the kernel enforces the memory limit on everything the sandbox's
processes hold (anonymous memory, shared memory such as `memfd_create` files, files in its tmpfs
mounts) and the process limit (processes and threads), whoever the grader runs as.

Why not only rlimits and the outside watch: RLIMIT_DATA is per process and counts no shared memory,
RLIMIT_NPROC does not bind root, and a watch that sums per-process figures misses tmpfs files and
memfd files nobody maps. A cgroup counts the pages themselves.

cgroup v2 (one hierarchy) and v1 (a `memory` and a `pids` hierarchy, as on hybrid machines) are
both used when the grader may create child groups of its own group (root, or a delegated
subtree). Where it may not, `open_cgroup` says why, and the sandbox falls back to the watch.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
REMOVE_ROUNDS = 50
REMOVE_PAUSE_S = 0.02

# Run on the host before bubblewrap (same interpreter): move this process into the sandbox's
# groups, then become the sandbox's command, so every process it starts is counted from its birth.
JOIN_SHIM = """\
import os, sys
count = int(sys.argv[1])
for path in sys.argv[2:2 + count]:
    with open(path, "w") as procs:
        procs.write(str(os.getpid()))
os.execv(sys.argv[2 + count], sys.argv[2 + count:])
"""


class CgroupUnavailableError(OSError):
    """The grader cannot create a control group here (the message says why)."""


@dataclass
class Cgroup:
    """One sandbox's control group(s): `memory` and `pids` folders (the same folder on v2)."""

    version: int
    memory: Path
    pids: Path
    _oom_seen: int = 0  # v2 counts breaches for ever: those before `forget_oom()` are old news

    def command(self, argv: list[str]) -> list[str]:
        """`argv` started inside this group."""
        procs = sorted({str(self.memory / "cgroup.procs"), str(self.pids / "cgroup.procs")})
        return [sys.executable, "-I", "-S", "-c", JOIN_SHIM, str(len(procs)), *procs, *argv]

    def members(self) -> set[int]:
        """Every process in the group (a process cannot leave it without write access to /sys)."""
        found: set[int] = set()
        for folder in {self.memory, self.pids}:
            try:
                found.update(int(line) for line in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return found

    def memory_used(self) -> int:
        """Bytes charged to the group now (anonymous, shared memory, tmpfs files, page cache)."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return _read_int(self.memory / name)

    def held_bytes(self) -> int:
        """Memory the group's processes hold (anonymous and shared memory, tmpfs files), not the
        page cache of files they read, which the kernel may drop."""
        stat = _read_keys(self.memory / "memory.stat")
        if self.version == 2:
            return stat.get("anon", 0) + stat.get("shmem", 0)
        return stat.get("total_rss", stat.get("rss", 0)) + stat.get("total_shmem", stat.get("shmem", 0))

    def out_of_memory(self) -> bool:
        """Did a process of the group need memory over the limit since `forget_oom()` (v1: they
        now wait, frozen; v2: the group is killed)?"""
        if self.version == 2:
            return self._oom_count() > self._oom_seen
        return _read_keys(self.memory / "memory.oom_control").get("under_oom", 0) > 0

    def forget_oom(self) -> None:
        if self.version == 2:
            self._oom_seen = self._oom_count()

    def _oom_count(self) -> int:
        events = _read_keys(self.memory / "memory.events")
        return max(events.get("oom", 0), events.get("oom_kill", 0), events.get("oom_group_kill", 0))

    def processes_refused(self) -> bool:
        """Was a fork or thread refused because the group reached its process limit?"""
        return _read_keys(self.pids / "pids.events").get("max", 0) > 0

    def remove(self) -> None:
        """Delete the group's folders (their processes must be dead; zombies may take a moment)."""
        for folder in {self.memory, self.pids}:
            for _ in range(REMOVE_ROUNDS):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(REMOVE_PAUSE_S)


def open_cgroup(memory_bytes: int, max_tasks: int) -> Cgroup:
    """A new group below the grader's own, limited to `memory_bytes` (no swap) and `max_tasks`
    processes and threads; CgroupUnavailableError when none can be made here."""
    name = f"grader-{secrets.token_hex(6)}"
    v2 = _own_group(2)
    if v2 is not None and _has_controllers(v2, ("memory", "pids")):
        folder = _make(v2 / name)
        try:
            _write(folder / "memory.max", memory_bytes)
            _write_optional(folder / "memory.swap.max", 0)
            # On a breach the whole group is killed (never a helper process alone, leaving the
            # kernel to go on): the watch then names the memory limit.
            _write_optional(folder / "memory.oom.group", 1)
            _write(folder / "pids.max", max_tasks)
        except OSError as error:
            Cgroup(2, folder, folder).remove()
            raise CgroupUnavailableError(f"cannot set the limits of {folder}: {error}") from error
        return Cgroup(2, folder, folder)
    memory_parent, pids_parent = _own_group(1, "memory"), _own_group(1, "pids")
    if memory_parent is None or pids_parent is None:
        raise CgroupUnavailableError("no cgroup memory and pids controllers are mounted under "
                                     f"{CGROUP_ROOT}")
    memory = _make(memory_parent / name)
    try:
        pids = _make(pids_parent / name)
    except CgroupUnavailableError:
        Cgroup(1, memory, memory).remove()
        raise
    group = Cgroup(1, memory, pids)
    try:
        _write(memory / "memory.limit_in_bytes", memory_bytes)
        _write_optional(memory / "memory.memsw.limit_in_bytes", memory_bytes)
        # Over the limit, v1 would kill one process (maybe a helper, not the kernel); instead the
        # group's processes wait and the watch stops the whole sandbox, naming the limit.
        _write(memory / "memory.oom_control", 1)
        _write(pids / "pids.max", max_tasks)
    except OSError as error:
        group.remove()
        raise CgroupUnavailableError(f"cannot set the limits of {memory}: {error}") from error
    return group


def cgroup_problem() -> str:
    """Why no group can be made here ("" when one can): tried once, with a group removed at once."""
    try:
        open_cgroup(1 << 30, 64).remove()
    except CgroupUnavailableError as error:
        return str(error)
    return ""


def _own_group(version: int, controller: str = "") -> Path | None:
    """The folder of the grader's own group in a hierarchy (v2, or v1 `controller`), if mounted."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        number, controllers, path = line.split(":", 2)
        if version == 2 and number == "0" and controllers == "":
            for mount in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
                if (mount / "cgroup.controllers").exists():
                    folder = mount / path.lstrip("/")
                    return folder if folder.is_dir() else None
        elif version == 1 and controller in controllers.split(","):
            folder = CGROUP_ROOT / controller / path.lstrip("/")
            return folder if folder.is_dir() else None
    return None


def _has_controllers(folder: Path, needed: tuple[str, ...]) -> bool:
    try:
        enabled = (folder / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False
    return all(name in enabled for name in needed)


def _make(folder: Path) -> Path:
    try:
        folder.mkdir()
    except OSError as error:
        raise CgroupUnavailableError(
            f"cannot create the cgroup {folder} ({error.strerror}); run the grader as root or in a "
            "delegated cgroup (e.g. systemd-run --user --scope -p Delegate=yes)") from error
    return folder


def _write(path: Path, value: int) -> None:
    with open(path, "w") as file:
        file.write(str(value))


def _write_optional(path: Path, value: int) -> None:
    """Settings some kernels lack (no swap accounting, older v2): skipped when absent."""
    if os.path.exists(path):
        _write(path, value)


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_keys(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values
