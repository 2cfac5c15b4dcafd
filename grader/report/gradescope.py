"""Gradescope's autograder results.json, a view of one SubmissionReport.

Fields as documented in Gradescope's "Autograder Specifications" (Output format): top level
score, execution_time (seconds), output, output_format, stdout_visibility, extra_data, tests[];
each test name, score, max_score, status ("passed" / "failed"), output, tags and visibility, one of
hidden | after_due_date | after_published | visible."""

from __future__ import annotations

import json
from typing import Any

from grader.report.explain import cell_notes, explain
from grader.report.model import CheckResult, SubmissionReport
from grader.report.text import clean_text, points

# Rubric visibility -> Gradescope visibility: hidden checks show once grades are published.
VISIBILITY = {"public": "visible", "hidden": "after_published"}
GRADESCOPE_VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
PASSED_OUTPUT = "Passed. {message}"
OVERVIEW = "{score} / {max_score} points."
NOT_GRADED = "Your notebook could not be graded: {reason}"


def render_gradescope(report: SubmissionReport) -> dict[str, Any]:
    """The results.json content for this report (a JSON-able dict)."""
    seconds = report.execution.seconds if report.execution else 0.0
    return {
        "score": round(report.score, 4),
        "execution_time": int(round(seconds)),
        "output": clean_text(_overview(report)),
        "output_format": "text",
        "stdout_visibility": "hidden",
        "tests": [_test(check) for check in report.checks],
        "extra_data": {"submission": report.submission, "status": report.status, "seed": report.seed,
                       "max_score": report.max_score, "notebook_sha256": report.notebook_sha256,
                       "grader_version": report.grader_version},
    }


def gradescope_json(report: SubmissionReport) -> str:
    return json.dumps(render_gradescope(report), indent=2, ensure_ascii=False) + "\n"


def _test(check: CheckResult) -> dict[str, Any]:
    parts = explain(check)
    if check.status == "pass":
        output = PASSED_OUTPUT.format(message=parts.finding)
    else:
        output = "\n".join(parts.lines())
    return {
        "name": clean_text(f"{check.id}: {check.title}"),
        "score": round(check.score, 4),
        "max_score": round(check.max_score, 4),
        "status": "passed" if check.status == "pass" else "failed",
        "output": clean_text(output),
        "output_format": "text",
        "tags": [check.task],
        "visibility": VISIBILITY.get(check.visibility, "after_published"),
    }


def _overview(report: SubmissionReport) -> str:
    lines = [OVERVIEW.format(score=points(report.score), max_score=points(report.max_score))]
    if report.status != "graded":
        lines.append(NOT_GRADED.format(reason=report.reason))
    lines += [note.line() for note in cell_notes(report.execution)]
    return "\n".join(lines)
