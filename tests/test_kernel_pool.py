"""Kernels started ahead of need (grader/execute/pool.py): each handed to one submission only, no
more started than submissions expected, the unused ones destroyed, a failed start left to the
submission. The pool's logic runs here on stand-in kernels; a real batch uses it in every kernel
test (grade_batch starts kernels ahead), and test_pool_kernels_are_fresh_and_none_is_left_behind
grades real notebooks through it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from support import A1_LECTURE_CHECK, GOOD_DEF, wait_for, write_notebook

from grader.execute.pool import KernelPool, ReadyKernel


class _Closing:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def __exit__(self, *exc: object) -> None:
        self.log.append(self.name)


def _stand_in(log: list[str], started: list[int], fail_at: int | None = None, delay: float = 0.0):
    lock = threading.Lock()

    def start(key: object) -> ReadyKernel:
        with lock:
            number = len(started)
            started.append(number)
        time.sleep(delay)
        if fail_at is not None and number == fail_at:
            raise RuntimeError("no kernel")
        return ReadyKernel(key, None, None, number, None, _Closing(log, f"sandbox{number}"),  # type: ignore[arg-type]
                           _Closing(log, f"kernel{number}"))
    return start


def test_each_submission_gets_its_own_kernel_and_no_more_are_started_than_expected() -> None:
    log: list[str] = []
    started: list[int] = []
    pool = KernelPool(_stand_in(log, started, delay=0.01))
    pool.expect("key", count=3, ahead=1)
    taken = [pool.take("key") for _ in range(3)]
    assert [kernel.session for kernel in taken] == [0, 1, 2]  # type: ignore[union-attr]
    assert pool.take("key") is None  # a fourth submission starts its own
    pool.close()
    assert started == [0, 1, 2]
    assert log == []  # the taken ones are their submissions' to close


def test_a_kernel_for_other_limits_is_not_handed_out() -> None:
    log: list[str] = []
    started: list[int] = []
    pool = KernelPool(_stand_in(log, started))
    pool.expect("key", count=1, ahead=1)
    assert pool.take("other") is None
    assert wait_for(lambda: pool._ready, 5)
    pool.close()
    assert log == ["kernel0", "sandbox0"]  # started, never taken: destroyed, kernel first


def test_unused_kernels_are_destroyed_on_close() -> None:
    log: list[str] = []
    started: list[int] = []
    pool = KernelPool(_stand_in(log, started))
    pool.expect("key", count=5, ahead=2)
    first = pool.take("key")
    assert first is not None
    assert wait_for(lambda: len(pool._ready) == 2, 5)  # two more wait, ready
    time.sleep(0.2)
    assert len(started) == 3, "at most `ahead` kernels wait ready at a time"
    pool.close()
    assert sorted(log) == ["kernel1", "kernel2", "sandbox1", "sandbox2"]


def test_a_failed_start_leaves_the_submissions_to_start_their_own() -> None:
    log: list[str] = []
    started: list[int] = []
    pool = KernelPool(_stand_in(log, started, fail_at=0))
    pool.expect("key", count=3, ahead=1)
    assert pool.take("key") is None
    assert pool.take("key") is None
    pool.close()
    assert started == [0]


@pytest.mark.kernel
def test_pool_kernels_are_fresh_and_none_is_left_behind(tmp_path: Path) -> None:
    """Notebooks graded through kernels started ahead: the rubric's preload is imported before the
    first cell (a module that cannot be imported is a fact in the report, not a failure); the
    second notebook cannot see what the first left in its kernel or its folders, both get full
    marks; a kernel started ahead and never taken is destroyed with its sandbox when the pool
    closes."""
    import os

    from grader.execute.local import LocalKernelExecutor
    from grader.grade.api import grade_batch
    from grader.rubric.load import load_rubric

    rubric_file = tmp_path / "rubric.toml"
    rubric_file.write_text('schema = 1\ntitle = "pool"\n[data]\nsource = "digits28"\n'
                           '[execution]\npreload = ["tabnanny", "no_such_module_here"]\n' + A1_LECTURE_CHECK,
                           "utf-8")
    rubric = load_rubric(rubric_file)
    leaves = ("import builtins, os, sys\n"
              "assert 'tabnanny' in sys.modules, 'the rubric preloads tabnanny'\n"
              "seen = [getattr(builtins, 'left_behind', None), os.path.exists('left_behind.txt')]\n"
              "assert seen == [None, False], seen\n"
              "builtins.left_behind = 1\n"
              "open('left_behind.txt', 'w').write('x')\n")
    folder = tmp_path / "in"
    for name in ("a", "b"):
        write_notebook(folder / f"{name}.ipynb", GOOD_DEF, leaves)
    workdirs: list[Path] = []
    executor = LocalKernelExecutor(after_probes=lambda session, workdir: workdirs.append(workdir))
    result = grade_batch(folder, rubric, tmp_path / "out", jobs=1, executor=executor)
    assert [(r.score, r.max_score) for r in result.reports] == [(2.0, 2.0), (2.0, 2.0)]
    for report in result.reports:
        assert report.execution.cells_ok == report.execution.cells_total == 2, report.execution.failed_cells
        kernel = json.loads(report.to_json())["execution"]["kernel"]
        assert any("no_such_module_here" in problem for problem in kernel["problems"]), kernel
    assert len(workdirs) == 2 and len({w.parent for w in workdirs}) == 2
    assert not any(w.exists() for w in workdirs), "a sandbox folder was left behind"

    spare = LocalKernelExecutor()
    spare.expect(rubric.execution, rubric.data, 1, count=1, ahead=1)
    assert wait_for(lambda: spare._pool._ready, 120), "no kernel was started ahead"
    kernel = spare._pool._ready[0]
    pid, root = kernel.session.pid, kernel.sandbox.root
    assert pid is not None and root.is_dir()
    spare.close()
    assert not root.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
