"""Hostile notebooks that attack the sandbox's own machinery, run by real kernels under bubblewrap:
symlinks planted for the replay kernel (host file write and read), shared memory and tmpfs that
rlimits do not count, writes into every folder the kernel can reach, the notebook's deadline
stretched by a replay, replies too large to hold, and a kernel left full. Each attack fails: the
host file is untouched, the limit is named, the score is not raised, and the correct parts of the
notebook still earn their points. (The probes' own time budget is tested in test_limits.py.)

The notebooks are graded in the session's hostile gallery (tests/hostile_gallery.py), one batch
with every other hostile notebook of the tests; each starts with a correct conv_output_size, so it
keeps A1_POINTS, and no attack raises that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_gallery import (
    A1_POINTS,
    CHECK_IDS,
    CORRECT,
    DISK_LIMIT_MB,
    GALLERY_RUBRIC,
    MEMFD_HOG,
    MEMORY_LIMIT_MB,
    NOTEBOOK_TIMEOUT_S,
    Gallery,
)
from support import GOOD_DEF, write_notebook

from grader.execute.sandbox import sandbox_support
from grader.grade.api import BatchResult, grade_batch

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(
    not sandbox_support("auto").bubblewrap,
    reason=f"NOT ISOLATED on this machine: {sandbox_support('auto').problem}")]


@pytest.fixture(scope="module")
def escapes_batch(hostile_gallery: Gallery) -> Gallery:
    return hostile_gallery


@pytest.fixture(scope="module")
def host_files(hostile_gallery: Gallery) -> dict[str, Path]:
    return hostile_gallery.host_files


@pytest.fixture(scope="module")
def audits(hostile_gallery: Gallery) -> list[dict]:
    return hostile_gallery.audits


def report_of(batch: Gallery | BatchResult, name: str) -> dict:
    return json.loads((batch.out_dir / f"{name}.json").read_text("utf-8"))


def outputs_of(batch: Gallery, name: str, cell: int) -> str:
    notebook = json.loads((batch.out_dir / name / "executed.ipynb").read_text("utf-8"))
    return "".join(o.get("text", "") for o in notebook["cells"][cell]["outputs"])


def test_the_batch_completes_and_the_correct_notebook_gets_full_marks(escapes_batch: Gallery) -> None:
    escapes = escapes_batch.names["test_escapes"]
    assert len(escapes) == 8 and all(escapes_batch.reports[name]["status"] == "graded" for name in escapes)
    good = report_of(escapes_batch, CORRECT[0])
    assert good["score"] == good["max_score"]
    assert good["execution"]["sandbox"]["memory_limit"] == "cgroup" or any(
        "MEMORY NOT CONTAINED" in w for w in good["execution"]["warnings"])


def test_symlinks_planted_for_the_replay_reach_no_host_file(escapes_batch: Gallery,
                                                            host_files: dict[str, Path],
                                                            audits: list[dict]) -> None:
    report = report_of(escapes_batch, "plants_links")
    # The attack ran: it planted links where it could (its own folders, and its view of the root,
    # which is the sandbox's own /tmp, not the host's).
    assert "planted" in outputs_of(escapes_batch, "plants_links", 1)
    assert report["execution"]["kernel_died_at_cell"] == 2 and report["execution"]["replayed_cells"] == [0, 1]
    assert host_files["existing"].read_text() == "original\n"
    assert not host_files["new"].exists()
    assert report["score"] == A1_POINTS  # replayed, with the attack racing again, and probed
    # No kernel of the batch, first or replayed, could read the hidden files (bound over by an empty file).
    assert len(audits) > len(escapes_batch.names["test_escapes"]), audits
    assert all("hidden" in entry for entry in audits), [entry for entry in audits if "hidden" not in entry]
    assert all(size == 0 for entry in audits for size in entry["hidden"])
    assert "TOP SECRET" not in (escapes_batch.out_dir / "plants_links.json").read_text("utf-8")


def test_shared_memory_counts_towards_the_memory_limit(escapes_batch: Gallery) -> None:
    """At the limit either the kernel is stopped, or (a cgroup may do this instead) the write into
    shared memory is refused and the kernel is left full: both name the memory limit and replay."""
    report = report_of(escapes_batch, "memfd_hog")
    execution = report["execution"]
    assert execution["limit_exceeded"] == "memory"
    if execution["kernel_died_at_cell"] is None:
        assert execution["memory_exhausted_at_cell"] == 1, execution
        [stopped] = [w for w in execution["warnings"] if "Cell 2 ran out of memory and left the kernel full" in w]
    else:
        assert execution["kernel_died_at_cell"] == 1
        [stopped] = [w for w in execution["warnings"] if "stopped at cell 2" in w]
    assert f"limit {MEMORY_LIMIT_MB:,} MB" in stopped or f"memory limit of {MEMORY_LIMIT_MB:,} MB" in stopped
    assert "held" not in outputs_of(escapes_batch, "memfd_hog", 1)
    assert execution["replayed_cells"] == [0]
    assert report["score"] == A1_POINTS  # cell 1 replayed and probed


def test_root_system_and_sandbox_folders_are_read_only_and_tmp_is_bounded(escapes_batch: Gallery) -> None:
    printed = outputs_of(escapes_batch, "writes_everywhere", 1)
    results = dict(eval(printed))  # noqa: S307 - our own notebook's printed list of pairs
    # bubblewrap's root is a tmpfs with no size limit: it is made read-only once mounts are set up.
    assert {results[p] for p in ("/", "/etc", "/usr")} == {"EROFS"} and results["/opt"] == "ENOENT"
    assert results["/tmp"] == "ENOSPC"
    assert report_of(escapes_batch, "writes_everywhere")["score"] == A1_POINTS


def test_writes_next_to_the_sockets_count_towards_the_disk_limit(escapes_batch: Gallery) -> None:
    execution = report_of(escapes_batch, "disk_hog")["execution"]
    assert execution["limit_exceeded"] == "disk" and execution["kernel_died_at_cell"] == 1
    assert any(f"limit of {DISK_LIMIT_MB} MB into its folders" in w for w in execution["warnings"])
    assert report_of(escapes_batch, "disk_hog")["score"] == A1_POINTS


def test_a_replay_shares_the_notebooks_deadline(escapes_batch: Gallery) -> None:
    execution = report_of(escapes_batch, "stretches_time")["execution"]
    # 8 + 5 s of cells, then death: the replay had the ~7 s left, not a fresh 20 s (13 s more).
    assert execution["kernel_died_at_cell"] == 3
    assert execution["cell_seconds"] <= NOTEBOOK_TIMEOUT_S + 2
    assert any("time limit of 20 s ran out while replaying" in w for w in execution["warnings"])
    assert report_of(escapes_batch, "stretches_time")["score"] == A1_POINTS  # probes have their own time


def test_an_oversized_reply_is_refused_and_the_kernel_goes_on(escapes_batch: Gallery) -> None:
    report = report_of(escapes_batch, "huge_error")
    [failed] = report["execution"]["failed_cells"]
    assert failed["index"] == 1 and "reply too large" in failed["message"]
    assert report["score"] == A1_POINTS
    assert (escapes_batch.out_dir / "huge_error" / "observations.json").stat().st_size < 1_000_000
    assert (escapes_batch.out_dir / "huge_error.json").stat().st_size < 1_000_000


def test_a_cell_that_leaves_the_kernel_full_is_replayed_around(escapes_batch: Gallery) -> None:
    report = report_of(escapes_batch, "fills_memory")
    execution = report["execution"]
    assert execution["memory_exhausted_at_cell"] == 1 and execution["limit_exceeded"] == "memory"
    assert execution["replayed_cells"] == [0] and execution["not_run_cells"] == [2]
    [failed] = execution["failed_cells"]
    assert failed["error"] == "MemoryError"
    assert any("Cell 2 ran out of memory and left the kernel full" in w for w in execution["warnings"])
    assert report["score"] == A1_POINTS


def test_a_kernel_filled_quietly_is_still_probed(escapes_batch: Gallery) -> None:
    """A cell that fills memory and swallows the MemoryError leaves the kernel full; the probes
    (whose code the preamble compiled before any student cell) still run there, so the correct
    function keeps its points and nothing needs replaying. The path where a probe itself runs out
    of memory is tested without a kernel in test_limits.py. (The notebook imports torch before it
    fills the kernel, as real notebooks do: a probe that must import torch into a full kernel fails
    with an OSError from the dynamic loader, which is not taken for lack of memory.)"""
    report = report_of(escapes_batch, "fills_memory_quietly")
    execution = report["execution"]
    assert execution["failed_cells"] == [] and execution["not_run_cells"] == []  # every cell ran
    assert report["score"] == A1_POINTS


def test_without_a_cgroup_every_report_says_so_and_the_watch_counts_shared_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A grader that may not make cgroups (a normal user without delegation) falls back to the
    watch, which counts memfd files, and says so in every report. (A batch of its own, not the
    gallery: the grader that may not make cgroups is this process, patched.)"""
    from grader.execute import sandbox

    monkeypatch.setattr(sandbox, "_cgroup_problem", lambda: "cannot create the cgroup (test)")
    write_notebook(tmp_path / "in" / "memfd_hog.ipynb", GOOD_DEF, MEMFD_HOG, "after = 1")
    (tmp_path / "gallery.toml").write_text(GALLERY_RUBRIC, "utf-8")
    # The gallery's limits, its A1 checks only (the others would only cost probe time here).
    others = [check_id for check_id in CHECK_IDS if not check_id.startswith("A1.")]
    (tmp_path / "a1.toml").write_text(f'extends = "gallery.toml"\nremove_checks = {json.dumps(others)}\n', "utf-8")
    batch = grade_batch(tmp_path / "in", tmp_path / "a1.toml", tmp_path / "out")
    execution = report_of(batch, "memfd_hog")["execution"]
    assert execution["sandbox"]["memory_limit"] == "watch"
    assert any(w.startswith("MEMORY NOT CONTAINED: cannot create the cgroup (test)") for w in execution["warnings"])
    assert execution["limit_exceeded"] == "memory" and execution["kernel_died_at_cell"] == 1
    assert report_of(batch, "memfd_hog")["score"] == A1_POINTS
