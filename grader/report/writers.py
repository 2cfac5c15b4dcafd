"""Write reports, observations, executed notebooks and the gradebook; every file atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.names import csv_cell
from grader.report.model import SubmissionReport

GRADEBOOK_NAME = "grades.csv"
# Names starting with "_" are never submission ids (discovery skips them), so nothing collides.
SUMMARY_PAGE_NAME = "_summary.html"
LOG_NAME = "_grader.log"
SUBMISSION_DIR_FILES = {"observations": "observations.json", "notebook": "executed.ipynb"}
STUDENT_PAGE_NAME = "feedback.html"  # in the submission's folder: the student's copy


REPORT_FILE_MODE = 0o644


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temp, REPORT_FILE_MODE)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def submission_files(out_dir: Path, submission_id: str) -> dict[str, Path]:
    folder = out_dir / submission_id
    return {"report": out_dir / f"{submission_id}.json",
            **{key: folder / name for key, name in SUBMISSION_DIR_FILES.items()}}


def feedback_pages(out_dir: Path, submission_id: str) -> dict[str, Path]:
    """Where the feedback pages go: the instructor's copy beside the JSON report, the student's
    copy in the submission's folder (an id like `x.student` cannot collide with it there)."""
    return {"instructor": out_dir / f"{submission_id}.html",
            "student": out_dir / submission_id / STUDENT_PAGE_NAME}


def write_feedback_pages(out_dir: Path, report: SubmissionReport, title: str) -> dict[str, Path]:
    """The instructor's copy (every check) and the student's copy (public checks only)."""
    from grader.report.html_feedback import render_feedback

    paths = feedback_pages(out_dir, report.submission)
    for audience, path in paths.items():
        write_atomic(path, render_feedback(report, audience, title))
    return paths


def write_summary_page(out_dir: Path, reports: Sequence[SubmissionReport], title: str) -> Path:
    """`_summary.html`: the batch at a glance, linking each feedback page."""
    from urllib.parse import quote

    from grader.report.html_summary import render_summary

    def link(submission_id: str, audience: str) -> str:
        return quote(feedback_pages(Path("."), submission_id)[audience].as_posix())

    path = out_dir / SUMMARY_PAGE_NAME
    write_atomic(path, render_summary(reports, title, link))
    return path


def write_report(out_dir: Path, report: SubmissionReport) -> Path:
    path = submission_files(out_dir, report.submission)["report"]
    write_atomic(path, report.to_json() + "\n")
    return path


def write_executed_notebook(path: Path, notebook: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def run_facts(report: SubmissionReport) -> dict[str, Any]:
    """How the notebook ran, in the columns the gradebook and `grader grade --json` share."""
    execution = report.execution
    return {"failed_cells": len(execution.failed_cells) if execution else 0,
            "timed_out_cells": len(execution.timed_out_cells) if execution else 0,
            "kernel_died": execution.kernel_died if execution else False,
            "seconds": report.seconds}


def gradebook_rows(reports: Sequence[SubmissionReport]) -> list[dict[str, Any]]:
    """One row per report; text cells escaped (grader.names.csv_cell): a student's id or name is
    never a formula or a control sequence to the spreadsheet that opens the file."""
    rows = []
    for report in reports:
        row: dict[str, Any] = {"submission": report.submission,
                               "student_id": report.student_id or report.submission,
                               "student_name": report.student_name, "status": report.status}
        row.update({task.task: task.score for task in report.tasks})
        row.update({
            "total": report.score,
            "max_score": report.max_score,
            "percent": round(100 * report.score / report.max_score, 1) if report.max_score else 0.0,
            **run_facts(report),
            "seed": report.seed,
            "reason": report.reason,
            "notes": "; ".join(report.intake_notes),
        })
        rows.append({key: csv_cell(value) if isinstance(value, str) else value for key, value in row.items()})
    return rows


def write_gradebook(out_dir: Path, reports: Sequence[SubmissionReport]) -> Path:
    """`grades.csv`: one row per submission, a column per task, the total and a status column."""
    path = out_dir / GRADEBOOK_NAME
    write_atomic(path, gradebook_csv(gradebook_rows(sorted(reports, key=lambda r: r.submission))))
    return path


def gradebook_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, written as pandas' `DataFrame(rows).to_csv(index=False)` writes them (the
    format grades.csv has always had) without importing pandas: columns in order of appearance; a
    column of numbers holding a float or an empty cell is written as floats (5 -> 5.0); an
    empty cell is empty."""
    import csv
    import io

    columns = list(dict.fromkeys(key for row in rows for key in row))

    def numeric(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    as_float = set()
    for column in columns:
        values = [row.get(column) for row in rows]
        present = [v for v in values if v is not None]
        if present and all(numeric(v) for v in present) and (len(present) < len(values)
                                                             or any(isinstance(v, float) for v in present)):
            as_float.add(column)

    def cell(column: str, value: Any) -> Any:
        if value is None:
            return ""
        if column in as_float:
            return repr(float(value))
        return value

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(column, row.get(column)) for column in columns])
    return buffer.getvalue()


GRADEBOOK_IMPORT_NAMES = {"moodle": "grades.moodle.csv", "canvas": "grades.canvas.csv"}
GRADEBOOK_FORMATS = tuple(GRADEBOOK_IMPORT_NAMES)
MOODLE_COLUMNS = ("Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments")
CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_FEEDBACK = "{score} / {max_score} points (automatic grading; see your feedback page)"


def write_gradebook_import(out_dir: Path, reports: Sequence[SubmissionReport], lms: str,
                           assignment: str) -> tuple[Path, list[str]]:
    """The gradebook in an LMS's import format, for the submissions whose id came from that LMS's
    download; returns the file and the output names left out (no id of that LMS).

    moodle: the assignment's "Upload grading worksheet" (Identifier "Participant <id>", Grade).
    canvas: the gradebook's "Import" CSV (the ID column is the Canvas user id; a "Points Possible"
    row; the assignment column is named after the rubric's title). A submission that could not be
    graded (status error) gets an empty grade, so an import never overwrites a grade with 0."""
    import csv
    import io

    ordered = sorted(reports, key=lambda r: r.submission)
    mapped = [r for r in ordered if r.id_rule == lms]
    left_out = [r.submission for r in ordered if r.id_rule != lms]

    def grade(report: SubmissionReport) -> str:
        return f"{report.score:g}" if report.status == "graded" else ""

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if lms == "moodle":
        writer.writerow(MOODLE_COLUMNS)
        for r in mapped:
            feedback = MOODLE_FEEDBACK.format(score=f"{r.score:g}", max_score=f"{r.max_score:g}")
            writer.writerow([f"Participant {csv_cell(r.student_id)}", csv_cell(r.student_name), grade(r),
                             f"{r.max_score:g}", feedback if r.status == "graded" else csv_cell(r.reason)])
    elif lms == "canvas":
        writer.writerow([*CANVAS_COLUMNS, csv_cell(assignment)])
        max_score = f"{ordered[0].max_score:g}" if ordered else ""
        writer.writerow(["Points Possible", "", "", "", "", max_score])
        for r in mapped:
            writer.writerow([csv_cell(r.student_name), csv_cell(r.student_id), "", "", "", grade(r)])
    else:
        raise ValueError(f"unknown gradebook format {lms!r}; one of {', '.join(GRADEBOOK_FORMATS)}")
    path = out_dir / GRADEBOOK_IMPORT_NAMES[lms]
    write_atomic(path, buffer.getvalue())
    return path, left_out


def write_junit(path: Path, report: SubmissionReport) -> Path:
    from grader.report.junit import render_junit

    write_atomic(path, render_junit(report))
    return path


def write_gradescope(path: Path, report: SubmissionReport) -> Path:
    """Gradescope's results.json (on Gradescope: /autograder/results/results.json)."""
    from grader.report.gradescope import gradescope_json

    write_atomic(path, gradescope_json(report))
    return path


def append_markdown_summary(path: Path, report: SubmissionReport, title: str, public_only: bool) -> Path:
    """Append (never replace: other steps write there too) a Markdown summary, e.g. to
    GitHub's $GITHUB_STEP_SUMMARY."""
    from grader.report.markdown import render_markdown

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as stream:
        stream.write(render_markdown(report, title, public_only) + "\n")
    return path


def write_feedback_page(path: Path, report: SubmissionReport, audience: str, title: str) -> Path:
    from grader.report.html_feedback import render_feedback

    write_atomic(path, render_feedback(report, audience, title))
    return path
