"""Sandbox and limit settings without kernels: rubric fields, exit codes, messages, bwrap command."""

from __future__ import annotations

import signal
import sys

import pytest
from support import REPO, edited_rubric

from grader.errors import RubricError, SandboxUnavailableError
from grader.execute import sandbox
from grader.execute.limits import describe_exit, explain_error, rlimits
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
    args = sandbox._bwrap_args("bwrap", tmp_path, tmp_path / "work", hidden)
    binds = {args[i + 2] for i, arg in enumerate(args) if arg in ("--ro-bind", "--bind")}
    assert sys.prefix in binds or any(sys.prefix.startswith(b + "/") for b in binds)
    assert str(REPO) not in binds and hidden[0] in binds
    assert {"--unshare-all", "--die-with-parent", "--new-session"} <= set(args)
    assert args[args.index("--chdir") + 1] == str(tmp_path / "work")


def test_an_environment_under_tmp_is_bound_after_the_scratch_tmpfs(monkeypatch) -> None:
    # A venv in /tmp (a CI clone there, say) must stay visible: bound before `--tmpfs /tmp`, the
    # tmpfs would hide it and bubblewrap could not start the kernel's Python.
    from pathlib import Path

    from grader.execute import sandbox

    monkeypatch.setattr(sandbox, "_python_prefixes", lambda: ("/tmp/clone/.venv",))
    args = sandbox._bwrap_args("bwrap", Path("/tmp/grader-x"), Path("/tmp/grader-x/work"), ())
    tmpfs = next(i for i in range(len(args) - 1) if args[i:i + 2] == ["--tmpfs", "/tmp"])
    venv = next(i for i in range(len(args) - 1) if args[i:i + 2] == ["--ro-bind", "/tmp/clone/.venv"])
    sandbox_folder = next(i for i in range(len(args) - 1) if args[i:i + 2] == ["--bind", "/tmp/grader-x"])
    assert tmpfs < venv and tmpfs < sandbox_folder
