"""Hostile notebooks, run by real kernels in the sandbox: none of them leaves a process behind, gets
out of its memory limit, reaches the network, finds the grader's files, forges a result or floods
the grader; each still gets its report, and the rest of the batch is graded. They are graded in
the session's hostile gallery (tests/hostile_gallery.py), one batch with every other hostile
notebook of the tests; a correct conv_output_size earns A1_POINTS there."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from hostile_gallery import A1_POINTS, CORRECT, MEMORY_LIMIT_MB, Gallery
from support import DEFAULT_RUBRIC, REPO, processes_running, write_notebook

from grader.execute.sandbox import sandbox_support
from grader.grade.api import grade_batch

pytestmark = pytest.mark.kernel

SUPPORT = sandbox_support("auto")
needs_bubblewrap = pytest.mark.skipif(
    not SUPPORT.bubblewrap,
    reason=f"NOT ISOLATED on this machine: {SUPPORT.problem}; `make test` installs bubblewrap as root")


@pytest.fixture(scope="module")
def hostile_batch(hostile_gallery: Gallery) -> Gallery:
    """These notebooks are graded in the session's hostile gallery (tests/hostile_gallery.py)."""
    return hostile_gallery


@pytest.fixture(scope="module")
def listener(hostile_gallery: Gallery) -> socket.socket:
    return hostile_gallery.listener


@pytest.fixture(scope="module")
def grader_folders(hostile_gallery: Gallery) -> dict[str, Path]:
    return hostile_gallery.grader_folders


def report_of(batch: Gallery, name: str) -> dict:
    return json.loads((batch.out_dir / f"{name}.json").read_text("utf-8"))


def outputs_of(batch: Gallery, name: str, cell: int, stream: str | None = None) -> str:
    notebook = json.loads((batch.out_dir / name / "executed.ipynb").read_text("utf-8"))
    return "".join(o.get("text", "") for o in notebook["cells"][cell]["outputs"]
                   if stream is None or o.get("name") == stream)


def test_every_hostile_notebook_is_graded(hostile_batch: Gallery) -> None:
    names = hostile_batch.names["test_sandbox"]
    assert len(names) == 9
    assert all(hostile_batch.reports[name]["status"] == "graded" for name in names)
    good = report_of(hostile_batch, CORRECT[0])
    assert good["score"] == good["max_score"]


def test_report_records_the_sandbox(hostile_batch: Gallery) -> None:
    execution = report_of(hostile_batch, CORRECT[0])["execution"]
    assert execution["sandbox"]["bubblewrap"] == SUPPORT.bubblewrap
    if not SUPPORT.bubblewrap:
        assert any("NOT ISOLATED" in w for w in execution["warnings"])


def test_spawned_and_escaped_processes_are_all_gone(hostile_batch: Gallery) -> None:
    # The notebook really started them: 300 children and one in a session of its own...
    assert "running 300 escaped 1 own session True" in outputs_of(hostile_batch, "spawns_processes", 1)
    # ... and when its grading ended, none of them was left.
    assert processes_running(b"sleep\x007919\x00", b"sleep\x007920\x00") == []
    assert report_of(hostile_batch, "spawns_processes")["score"] == A1_POINTS


def test_oversized_allocation_fails_naming_the_memory_limit(hostile_batch: Gallery) -> None:
    report = report_of(hostile_batch, "allocates_too_much")
    [failed] = report["execution"]["failed_cells"]
    assert failed["error"] == "MemoryError" and f"memory limit of {MEMORY_LIMIT_MB:,} MB" in failed["message"]
    assert report["score"] == A1_POINTS  # the next cell ran


def test_processes_over_the_memory_limit_together_are_stopped(hostile_batch: Gallery) -> None:
    report = report_of(hostile_batch, "forks_and_allocates")
    execution = report["execution"]
    assert execution["limit_exceeded"] == "memory"
    assert execution["kernel_died_at_cell"] == 1 and execution["not_run_cells"] == [2]
    [stopped] = [w for w in execution["warnings"] if "stopped at cell 2" in w]
    assert f"memory limit of {MEMORY_LIMIT_MB:,} MB" in stopped
    assert execution["seconds"] < 50  # stopped, not waited out (the cell sleeps 60 s)
    assert report["score"] == A1_POINTS  # cell 1 was replayed and probed


@needs_bubblewrap
def test_loopback_service_of_the_host_is_unreachable(hostile_batch: Gallery, listener) -> None:
    assert "blocked: ConnectionRefusedError" in outputs_of(hostile_batch, "connects", 0)
    with pytest.raises(BlockingIOError):
        listener.accept()
    # The listener works: a connection from the host does arrive.
    with socket.create_connection(listener.getsockname(), timeout=3):
        pass
    listener.setblocking(True)
    listener.settimeout(3)
    listener.accept()[0].close()


@needs_bubblewrap
def test_filesystem_search_finds_none_of_the_graders_files(hostile_batch: Gallery,
                                                          grader_folders: dict[str, Path]) -> None:
    seen = json.loads(outputs_of(hostile_batch, "snoops", 0, "stdout"))
    own_data = os.path.join(seen["cwd"], "data", "digits28.npz")
    assert own_data in seen["found"]  # the search did run, and found the notebook's own data
    assert [p for p in seen["found"] if p.endswith(".npz")] == [own_data]
    graders = [str(REPO), *(str(folder) for folder in grader_folders.values())]
    assert [p for p in seen["found"] if any(p == g or p.startswith(g + "/") for g in graders)] == []
    assert seen["readable"] == []


def test_forged_results_and_patched_torch_do_not_change_the_score(hostile_batch: Gallery) -> None:
    honest = report_of(hostile_batch, "wrong_conv")
    forger = report_of(hostile_batch, "wrong_conv_forges")
    assert forger["execution"]["failed_cells"] == []  # every fake and patch was in place
    a2 = {c["id"]: c["status"] for c in forger["checks"] if c["task"] == "A2"}
    assert a2 == {"A2.slide_example": "fail", "A2.random_inputs": "fail"}
    assert forger["score"] == honest["score"] == 0


@pytest.mark.parametrize("name", ["floods_100mb", "floods_past_the_cap"])
def test_100_mb_print_is_capped_marked_and_graded(hostile_batch: Gallery, name: str) -> None:
    report = report_of(hostile_batch, name)
    assert report["score"] == A1_POINTS and report["execution"]["output_capped_cells"] == [0]
    assert report["execution"]["seconds"] < 60
    executed = hostile_batch.out_dir / report["files"]["notebook"]
    assert executed.stat().st_size < 1_000_000
    assert "output capped here" in outputs_of(hostile_batch, name, 0)


# Issue 10: a cell that fills memory and keeps it (the list stays alive), with torch imported.
FILLS_MEMORY = """blocks = []
while True:
    blocks.append(bytes(256 << 20))"""


@pytest.mark.parametrize("breaker", ["exit", "fills_memory"])
def test_a_broken_kernel_after_part_b_keeps_parts_a_and_b(tmp_path: Path, breaker: str) -> None:
    """The reference solution up to Part B, then os._exit(3) or a cell that fills memory (the kernel
    is left full). Part A must earn every point; each Part B check must pass (or be `skipped`
    while this grader version does not evaluate it). Not in the hostile gallery: it needs the
    default rubric (every check of Parts A and B, the MNIST files the solution's data cell loads)."""
    solution = json.loads((REPO / "reference" / "solution.ipynb").read_text("utf-8"))
    cells = [c for c in solution["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in cells]
    after_b = next(i for i, s in enumerate(sources) if "n_params" in s) + 1
    broken_at = after_b  # index among the code cells = index in the written notebook
    breaking = "import os\nos._exit(3)" if breaker == "exit" else FILLS_MEMORY
    write_notebook(tmp_path / "in" / f"{breaker}.ipynb", *sources[:after_b], breaking, *sources[after_b:])
    batch = grade_batch(tmp_path / "in", DEFAULT_RUBRIC, tmp_path / "out")
    [report] = batch.reports
    execution = report.execution
    if breaker == "exit":
        assert execution["kernel_died_at_cell"] == broken_at and execution["kernel_exit_code"] == 3
    else:
        assert execution["memory_exhausted_at_cell"] == broken_at and execution["limit_exceeded"] == "memory"
        assert [c["error"] for c in execution["failed_cells"]] == ["MemoryError"]
        assert execution["not_run_cells"] == list(range(broken_at + 1, len(sources) + 1))
    assert list(execution["replayed_cells"]) == list(range(broken_at))
    part_a = [c for c in report.checks if c.task.startswith("A")]
    assert sum(c.score for c in part_a) == sum(c.max_score for c in part_a) == 30
    part_b = [c for c in report.checks if c.task.startswith("B")]
    assert part_b and all(c.status in ("pass", "skipped") for c in part_b), \
        {c.id: c.message for c in part_b}
    assert all(c.score == c.max_score for c in part_b if c.status == "pass")


@needs_bubblewrap
def test_a_venv_reached_through_a_symlink_still_runs_notebooks_isolated(tmp_path: Path) -> None:
    """The sandbox binds the environment's real folders; the interpreter it runs must be named by
    a path that exists in there, even when the venv was reached through a link (a worktree's
    .venv, a home folder that is a link)."""
    import subprocess
    import sys

    link = tmp_path / "venv-link"
    link.symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    code = ("from grader.execute.sandbox import sandbox_support; s = sandbox_support(); "
            "print(s.bubblewrap, s.problem)")
    done = subprocess.run([str(link / "bin" / Path(sys.executable).name), "-c", code], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("True"), (done.stdout, done.stderr)
