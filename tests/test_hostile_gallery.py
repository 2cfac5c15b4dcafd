"""Issue 8, done when: "a batch holding every hostile notebook of the tests together with correct
ones completes, writes every report, grades.csv and the summary, and the correct ones get full
marks". The batch is the session's hostile gallery (tests/hostile_gallery.py), graded once through
the CLI; what each hostile notebook must (not) achieve is asserted in the module named for it."""

from __future__ import annotations

import csv

import pytest
from hostile_gallery import CORRECT, Gallery
from html_support import text_of

from grader.report.writers import GRADEBOOK_NAME, LOG_NAME, SUMMARY_PAGE_NAME

pytestmark = pytest.mark.kernel


def test_the_hostile_gallery_holds_every_hostile_notebook_of_the_tests(hostile_gallery: Gallery) -> None:
    from grader.execute.sandbox import sandbox_support

    names = hostile_gallery.names
    # The sandbox escapes run only where bubblewrap isolates them (test_escapes.py skips otherwise).
    escapes = 8 if sandbox_support("auto").bubblewrap else 0
    assert {module: len(ids) for module, ids in names.items()} == {
        "test_escapes": escapes, "test_intake_batch": 8, "test_probe_hardening": 6, "test_sandbox": 9,
        "test_execution": 8}
    everything = [student for ids in names.values() for student in ids]
    assert len(everything) == len(set(everything))
    assert set(hostile_gallery.reports) == set(everything)


def test_the_batch_completes_with_every_report_the_gradebook_and_the_summary(hostile_gallery: Gallery) -> None:
    run, out, reports = hostile_gallery.run, hostile_gallery.out_dir, hostile_gallery.reports
    assert run.returncode == 0, run.stderr[-5000:]
    assert f"{len(reports)} notebook(s) in" in run.stdout
    # Every submission has its report, its page and its folder; nothing else is in the output
    # folder but the gradebook, the summary and the log.
    for report in reports.values():
        name = report["submission"]
        assert (out / f"{name}.json").is_file() and (out / f"{name}.html").is_file()
        assert (out / name / "feedback.html").is_file() and (out / name / "observations.json").is_file()
    owned = {f"{r['submission']}{suffix}" for r in reports.values() for suffix in (".json", ".html", "")}
    assert {p.name for p in out.iterdir()} == owned | {GRADEBOOK_NAME, SUMMARY_PAGE_NAME, LOG_NAME}
    with (out / GRADEBOOK_NAME).open(encoding="utf-8", newline="") as stream:
        rows = {row["submission"]: row for row in csv.DictReader(stream)}
    assert set(rows) == {r["submission"] for r in reports.values()}
    summary = (out / SUMMARY_PAGE_NAME).read_text("utf-8")
    students = text_of(summary, "students")
    assert all(r["submission"] in students for r in reports.values())
    assert f"{len(reports)} notebook(s)" in text_of(summary, "batch-stats")
    log = (out / LOG_NAME).read_text("utf-8")
    assert "batch done in" in log
    assert all(f"graded {r['submission']}: " in log for r in reports.values() if r["status"] == "graded")


def test_the_correct_notebooks_get_full_marks(hostile_gallery: Gallery) -> None:
    for student in CORRECT:
        report = hostile_gallery.reports[student]
        assert report["status"] == "graded" and report["max_score"] > 0
        assert report["score"] == report["max_score"], [
            (c["id"], c["message"]) for c in report["checks"] if c["status"] != "pass"]
        execution = report["execution"]
        assert not execution["failed_cells"] and not execution["timed_out_cells"] and not execution["kernel_died"]
