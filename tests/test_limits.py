"""Sandbox and limit settings without kernels: rubric fields, exit codes, messages, bwrap command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
from support import REPO, edited_rubric

from grader.errors import RubricError, SandboxUnavailableError
from grader.execute import sandbox
from grader.execute.cgroups import cgroup_problem, open_cgroup
from grader.execute.kernel import MAX_SHELL_MESSAGE_BYTES, REPLY_REFUSED, REPLY_REFUSED_MESSAGE, ExecuteOutcome
from grader.execute.limits import MB, describe_exit, explain_error, is_memory_error, rlimits
from grader.execute.local import MAX_PROBE_REPLIES_CHARS, LocalKernelExecutor, _Clock, _Pass, _starved
from grader.execute.processes import shared_memory_bytes
from grader.observe.preamble import KernelGate
from grader.observe.probe import ProbeReply, ProbeRequest
from grader.rubric.load import load_rubric


def test_execution_limits_have_defaults(default_rubric) -> None:
    limits = default_rubric.execution
    assert (limits.memory_limit_mb, limits.max_processes, limits.sandbox) == (4096, 512, "auto")


def test_memory_limit_too_small_for_torch_is_rejected_naming_the_field(tmp_path) -> None:
    path = edited_rubric(tmp_path, ("kernel_start_timeout_s = 60",
                                    "kernel_start_timeout_s = 60\nmemory_limit_mb = 512"))
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    assert "execution.memory_limit_mb: found 512" in str(caught.value) and ">= 1024" in str(caught.value)


def test_unknown_sandbox_mode_is_rejected(tmp_path) -> None:
    path = edited_rubric(tmp_path, ("kernel_start_timeout_s = 60",
                                    'kernel_start_timeout_s = 60\nsandbox = "docker"'))
    with pytest.raises(RubricError, match="execution.sandbox: found 'docker'.*auto, required, off"):
        load_rubric(path)


def test_process_rlimit_only_inside_a_user_namespace(default_rubric) -> None:
    assert "RLIMIT_NPROC" not in rlimits(default_rubric.execution, bound_processes=False)
    limits = rlimits(default_rubric.execution, bound_processes=True)
    assert limits["RLIMIT_NPROC"] == (512, 512) and limits["RLIMIT_DATA"][0] == 4096 * 1024 * 1024


def test_exit_codes_of_limits_are_named(default_rubric) -> None:
    limits = default_rubric.execution
    assert describe_exit(128 + signal.SIGXCPU, limits).limit == "cpu"
    assert describe_exit(-signal.SIGXFSZ, limits).limit == "file"
    assert describe_exit(3, limits) is None and describe_exit(128 + signal.SIGKILL, limits) is None


def test_memory_errors_name_the_memory_limit(default_rubric) -> None:
    limits = default_rubric.execution
    assert explain_error("MemoryError", "", limits) == " (the notebook reached its memory limit of 4,096 MB)"
    torch_message = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"
    assert "memory limit" in explain_error("RuntimeError", torch_message, limits)
    assert explain_error("ValueError", "bad", limits) == "bad"


def test_required_sandbox_without_bubblewrap_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox._detect.cache_clear()
    try:
        with pytest.raises(SandboxUnavailableError, match="apt-get install bubblewrap"):
            sandbox.sandbox_support("required")
        support = sandbox.sandbox_support("auto")
        assert not support.bubblewrap and "NOT ISOLATED" in support.warnings()[0]
    finally:
        sandbox._detect.cache_clear()


def test_bubblewrap_command_binds_the_environment_but_not_the_repository(tmp_path) -> None:
    hidden = ("/env/lib/python3.11/site-packages/sklearn/datasets/data/digits.csv.gz",)
    folders = sandbox._make_kernel_folders(tmp_path, 1)
    args = sandbox._bwrap_args("bwrap", folders, hidden, tmp_path / "empty")
    binds = {args[i + 2] for i, arg in enumerate(args) if arg in ("--ro-bind", "--bind")}
    assert sys.prefix in binds or any(sys.prefix.startswith(b + "/") for b in binds)
    assert str(REPO) not in binds and hidden[0] in binds
    assert {"--unshare-all", "--die-with-parent", "--new-session"} <= set(args)
    assert args[args.index("--chdir") + 1] == str(folders.workdir)


def test_the_kernel_can_write_only_its_own_fresh_folders(tmp_path) -> None:
    """Writable: the working directory and the socket folder, nothing else; the connection file
    read-only; the log, the empty file and the sandbox root never bound; the root made read-only
    after every mount."""
    folders = sandbox._make_kernel_folders(tmp_path, 2)
    args = sandbox._bwrap_args("bwrap", folders, ("/hidden",), tmp_path / "empty")
    pairs = [(args[i], args[i + 1], args[i + 2]) for i, arg in enumerate(args)
             if arg in ("--bind", "--ro-bind", "--ro-bind-try")]
    assert {(src, dest) for kind, src, dest in pairs if kind == "--bind"} == {
        (str(folders.workdir), str(folders.workdir)), (str(folders.ipc_dir), str(folders.ipc_dir))}
    assert ("--ro-bind", str(tmp_path / "empty"), "/hidden") in pairs
    assert ("--ro-bind-try", str(folders.connection_file), str(folders.connection_file)) in pairs
    sources = {src for _, src, _ in pairs}
    assert str(folders.log) not in sources and str(tmp_path) not in sources
    assert str(folders.runtime_dir) not in sources
    remount = args.index("--remount-ro")
    assert args[remount + 1] == "/" and all(remount > i for i, a in enumerate(args) if a in ("--bind", "--ro-bind"))
    with pytest.raises(FileExistsError):  # a kernel's folders are always new
        sandbox._make_kernel_folders(tmp_path, 2)


def test_memory_errors_are_recognised_in_cells_and_probes() -> None:
    assert is_memory_error("MemoryError", "")
    assert is_memory_error("RuntimeError", "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: "
                                           "can't allocate memory: you tried to allocate 4000000000 bytes.")
    assert is_memory_error(None, "RuntimeError: could not allocate 8 GB")
    assert not is_memory_error("ValueError", "shape mismatch")


def test_memfd_files_count_as_shared_memory() -> None:
    before = shared_memory_bytes([os.getpid()])
    fd = os.memfd_create("held")
    try:
        os.write(fd, b"\1" * (8 << 20))
        assert shared_memory_bytes([os.getpid()]) - before >= 8 << 20
    finally:
        os.close(fd)
    assert shared_memory_bytes([os.getpid()]) - before < 1 << 20


def test_the_blamed_cell_is_the_one_after_which_memory_grew_most() -> None:
    state = _Pass(held_after={0: 100 * MB, 2: 150 * MB, 3: 1400 * MB, 5: 1450 * MB})
    assert state.most_grown() == (3, 1250 * MB)
    assert _Pass().most_grown() is None


def test_a_cgroup_counts_shared_memory_and_is_removed(tmp_path) -> None:
    """Where the grader may make cgroups (root here and in CI): a memfd counts, and the folder goes."""
    problem = cgroup_problem()
    if problem:
        pytest.skip(f"no cgroups here: {problem}")
    group = open_cgroup(256 * MB, 32)
    try:
        script = ("import os, sys\nfd = os.memfd_create('x')\nos.write(fd, b'\\1' * (64 << 20))\n"
                  "sys.stdout.write(open('/proc/self/cgroup').read())\nsys.stdout.flush()\ninput()")
        with subprocess.Popen(group.command([sys.executable, "-I", "-S", "-c", script]),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
            try:
                assert group.memory.name in child.stdout.readline() + child.stdout.readline()
                assert group.held_bytes() >= 64 * MB and child.pid in group.members()
            finally:
                child.kill()
    finally:
        group.remove()
    assert not group.memory.exists() and not group.pids.exists()



def test_an_environment_under_tmp_is_bound_after_the_scratch_tmpfs(monkeypatch) -> None:
    # A venv in /tmp (a CI clone there, say) must stay visible: bound before `--tmpfs /tmp`, the
    # tmpfs would hide it and bubblewrap could not start the kernel's Python.
    from pathlib import Path

    from grader.execute import sandbox

    monkeypatch.setattr(sandbox, "_python_prefixes", lambda: ("/tmp/clone/.venv",))
    folders = sandbox.KernelFolders(workdir=Path("/tmp/grader-x/work1"), runtime_dir=Path("/tmp/grader-x/k1"))
    args = sandbox._bwrap_args("bwrap", folders, (), Path("/tmp/grader-x/empty"))
    tmpfs = next(i for i in range(len(args) - 1) if args[i:i + 2] == ["--tmpfs", "/tmp"])
    venv = next(i for i in range(len(args) - 1) if args[i:i + 2] == ["--ro-bind", "/tmp/clone/.venv"])
    sandbox_folder = next(i for i in range(len(args) - 1) if args[i:i + 2] == ["--bind", str(folders.workdir)])
    assert tmpfs < venv and tmpfs < sandbox_folder


class _SlowKernel:
    """Stands in for a kernel session: every probe runs until its time-out."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def is_alive(self) -> bool:
        return True

    def execute(self, code, timeout_s, **options) -> ExecuteOutcome:
        self.timeouts.append(timeout_s)
        return ExecuteOutcome(status="timeout", seconds=timeout_s)


def test_probes_share_one_time_budget() -> None:
    """Probes of 30 s each with a budget of 70 s: two full, one cut to the 10 s left, then none."""
    kernel = _SlowKernel()
    probes = tuple(ProbeRequest(f"P{i}", {"kind": "x"}, 30.0) for i in range(5))
    clock = _Clock(notebook_timeout_s=600, probe_budget_s=70)
    replies, starved = LocalKernelExecutor()._run_probes(kernel, None, probes, clock, KernelGate("t"))
    # Then one call for the preamble's facts, outside the probes' budget.
    assert kernel.timeouts[:4] == [30.0, 30.0, 10.0, 30.0] and clock.probe_seconds == 70 and starved is None
    assert replies["P0"].message == "did not finish within 30 s"
    assert replies["P2"].message == "did not finish within the 10.0 s left of the probes' time budget of 70 s"
    assert [replies[f"P{i}"].status for i in (3, 4)] == ["timeout", "timeout"]
    assert replies["P4"].message == "the probes' time budget of 70 s was used up before this probe"


def test_probe_budget_is_a_rubric_field(default_rubric, tmp_path) -> None:
    assert default_rubric.execution.probe_budget_s == 300
    path = edited_rubric(tmp_path, ("kernel_start_timeout_s = 60", "kernel_start_timeout_s = 60\nprobe_budget_s = 0"))
    with pytest.raises(RubricError, match="execution.probe_budget_s"):
        load_rubric(path)


class _OversizedKernel(_SlowKernel):
    """Stands in for a kernel whose first reply was refused by the shell socket and whose later
    replies are each under the cap but large together."""

    def execute(self, code, timeout_s, **options) -> ExecuteOutcome:
        self.timeouts.append(timeout_s)
        if len(self.timeouts) == 1:
            return ExecuteOutcome(status="error", error=REPLY_REFUSED, seconds=0.1,
                                  message=REPLY_REFUSED_MESSAGE.format(limit=MAX_SHELL_MESSAGE_BYTES))
        nonce = re.search(r"\.probe\('([0-9a-f]+)'", options["user_expressions"]["result"])
        if nonce is None:  # the preamble's facts
            return ExecuteOutcome(status="timeout", seconds=0.1)
        text = repr(json.dumps({"nonce": nonce.group(1), "result": {"value": "x" * (3 * MB)}}))
        return ExecuteOutcome(status="ok", seconds=0.1,
                              user_expressions={"result": {"status": "ok", "data": {"text/plain": text}}})


def test_oversized_probe_replies_become_probe_errors_and_stay_bounded_together() -> None:
    probes = tuple(ProbeRequest(f"P{i}", {"kind": "x"}, 30.0) for i in range(8))
    clock = _Clock(notebook_timeout_s=600, probe_budget_s=300)
    replies, _ = LocalKernelExecutor()._run_probes(_OversizedKernel(), None, probes, clock, KernelGate("t"))
    assert replies["P0"].status == "probe_error" and replies["P0"].message.startswith("reply too large")
    assert replies["P1"].status == "ok"
    kept = [r for key, r in replies.items() if r.status == "ok" and key.startswith("P")]
    assert 0 < len(kept) < 7 and sum(len(r.data["value"]) for r in kept) <= MAX_PROBE_REPLIES_CHARS
    assert replies["P7"].status == "probe_error" and "replies together passed" in replies["P7"].message


class _StarvedKernel(_SlowKernel):
    """Stands in for a kernel whose second probe fails for lack of memory."""

    def execute(self, code, timeout_s, **options) -> ExecuteOutcome:
        self.timeouts.append(timeout_s)
        if len(self.timeouts) == 2:
            return ExecuteOutcome(status="error", error="MemoryError", message="", seconds=0.1)
        return ExecuteOutcome(status="timeout", seconds=0.1)


def test_a_probe_that_runs_out_of_memory_stops_the_probes_and_is_reported_starved() -> None:
    probes = tuple(ProbeRequest(f"P{i}", {"kind": "x"}, 30.0) for i in range(4))
    clock = _Clock(notebook_timeout_s=600, probe_budget_s=300)
    replies, starved = LocalKernelExecutor()._run_probes(_StarvedKernel(), None, probes, clock, KernelGate("t"))
    assert starved is replies["P1"] and replies["P1"].status == "probe_error"
    assert [replies[f"P{i}"].message for i in (2, 3)] == ["the kernel ran out of memory during an earlier probe"] * 2


class _FullSandbox:
    """Stands in for a sandbox holding `held_mb` of its 1,024 MB limit."""

    def __init__(self, held_mb: int) -> None:
        self.held_mb = held_mb
        self.limits = SimpleNamespace(memory_limit_mb=1024)

    def memory_held(self) -> int:
        return self.held_mb * MB

    def peek_breach(self):
        return None


def test_a_student_call_out_of_memory_in_a_full_kernel_counts_as_a_starved_probe() -> None:
    """The probe records a student call's MemoryError as an observation; in a kernel left full
    (>= 80% of its limit held) that is the kernel's state, not the student's function: starved.
    The same error with the memory free (one oversized allocation refused) stays the student's."""
    recorded = ProbeReply("ok", data={"cases": [{"ok": True}, {"error": {
        "error": "RuntimeError", "message": "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                                            "can't allocate memory: you tried to allocate 411041792 bytes."}}]})
    assert _starved(recorded, _FullSandbox(held_mb=1000))
    assert not _starved(recorded, _FullSandbox(held_mb=100))
    assert not _starved(ProbeReply("ok", data={"cases": [{"error": {"error": "ValueError", "message": "x"}}]}),
                        _FullSandbox(held_mb=1000))
