"""What a graded batch leaves in its output folder for people: a feedback page per student (two
copies), the summary page and the log, next to the JSON reports and grades.csv."""

from __future__ import annotations

import pytest
from html_support import parse, text_of

from grader.report.writers import GRADEBOOK_NAME, LOG_NAME, SUMMARY_PAGE_NAME, feedback_pages

pytestmark = pytest.mark.kernel


def test_every_submission_has_both_feedback_pages(sample_batch) -> None:
    out = sample_batch.out_dir
    for report in sample_batch.reports:
        pages = feedback_pages(out, report.submission)
        assert pages["instructor"].is_file() and pages["student"].is_file(), report.submission
        assert (out / f"{report.submission}.json").is_file()
    assert (out / GRADEBOOK_NAME).is_file()
    assert sample_batch.summary_page == out / SUMMARY_PAGE_NAME and sample_batch.summary_page.is_file()


def test_lost_point_on_a_real_notebook_shows_expected_observed_and_hint(sample_batch) -> None:
    html = feedback_pages(sample_batch.out_dir, "fails_A1_off_by_one")["student"].read_text("utf-8")
    card = next(e for e in parse(html) if e["attrs"].get("data-check") == "A1.lecture_examples")
    text = " ".join("".join(card["text"]).split())
    assert "Expected 2 Observed 1" in text
    assert "Hint H_out = (H_in - K + 2P) / S + 1" in text
    assert "A1.stride_floor" not in html  # hidden: not in the student's copy
    assert "A1.stride_floor" in feedback_pages(sample_batch.out_dir, "fails_A1_off_by_one")["instructor"].read_text()


def test_summary_page_lists_every_notebook_and_the_broken_one(sample_batch) -> None:
    html = sample_batch.summary_page.read_text("utf-8")
    students = text_of(html, "students")
    assert all(report.submission in students for report in sample_batch.reports)
    assert "fails_cell_raises cell(s) 13 raised an error" in text_of(html, "problems")
    assert f"{len(sample_batch.reports)} notebook(s)" in text_of(html, "batch-stats")


def test_log_file_records_each_submission(sample_batch) -> None:
    log = (sample_batch.out_dir / LOG_NAME).read_text("utf-8")
    assert sample_batch.log_file == sample_batch.out_dir / LOG_NAME
    for report in sample_batch.reports:
        assert f"graded {report.submission}: {report.score:g} / {report.max_score:g}" in log
    assert "batch done in" in log


def test_feedback_pages_stay_small(sample_batch) -> None:
    sizes = [feedback_pages(sample_batch.out_dir, r.submission)["instructor"].stat().st_size
             for r in sample_batch.reports]
    assert max(sizes) < 200_000  # self-contained, no embedded fonts or libraries


def test_rescore_rewrites_the_pages_and_the_summary(sample_batch, tmp_path) -> None:
    import shutil

    from support import edited_rubric

    from grader.grade.api import rescore

    out = tmp_path / "reports"
    shutil.copytree(sample_batch.out_dir, out)
    slide = 'title = "The lecture\'s 3x3 image * 2x2 kernel example"'
    rubric = edited_rubric(tmp_path, (f"points = 2\n{slide}", f"points = 10\n{slide}"))
    before = next(r for r in sample_batch.reports if r.submission == "fails_A2_hardcoded_slide")
    result = rescore(out, rubric)
    page = feedback_pages(out, "fails_A2_hardcoded_slide")["instructor"].read_text("utf-8")
    total = f"{before.score + 8:g} / {before.max_score + 8:g}"
    assert text_of(page, "total-score").startswith(total)
    assert result.summary_page == out / SUMMARY_PAGE_NAME
    assert total in text_of(result.summary_page.read_text("utf-8"), "students")
