"""The batch summary page, a view of all SubmissionReports: the score histogram, the pass rate
of each check, the slowest notebooks, the notebooks in trouble and a link to each feedback page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import mean, median
from typing import Any

from markupsafe import Markup

from grader.report.html_page import render_page
from grader.report.model import SubmissionReport
from grader.report.svg import bar_chart

HISTOGRAM_BINS = 10
SLOWEST_SHOWN = 5
NO_PROBLEMS = "Every notebook ran: no failed or timed-out cells, no kernel deaths, no grading errors."

def percent(report: SubmissionReport) -> float:
    return 100 * report.score / report.max_score if report.max_score else 0.0


def seconds(report: SubmissionReport) -> float:
    return report.seconds


def problems(report: SubmissionReport) -> list[str]:
    """What went wrong running this notebook, in words; empty when it ran cleanly."""
    found = []
    if report.status != "graded":
        found.append(f"not graded: {report.reason}")
    execution = report.execution
    if execution is None:
        return found
    failed = [str(c.index + 1) for c in execution.failed_cells]
    if failed:
        found.append(f"cell(s) {', '.join(failed)} raised an error")
    timed_out = [str(c.index + 1) for c in execution.timed_out_cells]
    if timed_out:
        found.append(f"cell(s) {', '.join(timed_out)} timed out")
    if execution.kernel_died:
        at = execution.kernel_died_at_cell
        found.append(f"kernel died at cell {'?' if at is None else at + 1}")
    if execution.notebook_timed_out:
        found.append("notebook time limit reached")
    return found


def render_summary(reports: Sequence[SubmissionReport], title: str = "Batch summary",
                   link: Callable[[str, str], str] | None = None) -> str:
    """The summary page; `link(submission, audience)` gives the relative URL of a feedback page."""
    ordered = sorted(reports, key=lambda r: r.submission)
    scores = [percent(r) for r in ordered]
    graded = sum(1 for r in ordered if r.status == "graded")
    stats = (f"{len(ordered)} notebook(s), {graded} graded, {len(ordered) - graded} not gradable · "
             f"mean {mean(scores):.1f}% · median {median(scores):.1f}%" if ordered else "No notebooks.")
    width = 100 // HISTOGRAM_BINS
    labels = [f"{i * width}–{(i + 1) * width}" for i in range(HISTOGRAM_BINS)]
    # SVG drawn by svg.py, which escapes every label it writes.
    histogram = Markup(bar_chart(labels, histogram_counts(ordered), title="Notebooks per score band",
                                 x_label="score (% of the maximum)", width=640))
    students = [{"report": r, "percent": percent(r),
                 "links": {a: link(r.submission, a) for a in ("instructor", "student")} if link else None}
                for r in ordered]
    return render_page(
        "summary.html", page_title=title, title=title, stats=stats, histogram=histogram,
        pass_rates=_pass_rates(ordered), slowest=sorted(ordered, key=seconds, reverse=True)[:SLOWEST_SHOWN],
        troubled=[(r, problems(r)) for r in ordered if problems(r)], no_problems=NO_PROBLEMS, students=students)


def histogram_counts(reports: Sequence[SubmissionReport], bins: int = HISTOGRAM_BINS) -> list[int]:
    """Notebooks per score band of 100/bins percent; 100% falls into the top band."""
    counts = [0] * bins
    for report in reports:
        counts[min(bins - 1, int(percent(report) // (100 / bins)))] += 1
    return counts


def _pass_rates(reports: Sequence[SubmissionReport]) -> list[dict[str, Any]]:
    order: dict[str, tuple[str, str]] = {}
    for report in reports:
        for check in report.checks:
            order.setdefault(check.id, (check.title, check.visibility))
    rows = []
    for check_id, (title, visibility) in order.items():
        results = [c for r in reports for c in r.checks if c.id == check_id]
        passed = sum(1 for c in results if c.status == "pass")
        rows.append({"id": check_id, "title": title, "visibility": visibility, "passed": passed,
                     "total": len(results), "skipped": sum(1 for c in results if c.status == "skipped"),
                     "rate": passed / len(results) if results else 0.0})
    return rows
