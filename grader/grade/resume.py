"""Resuming an interrupted batch: which submissions already have a complete, up-to-date report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from grader.errors import NotebookUnreadableError
from grader.grade.submissions import Submission, read_notebook_bytes
from grader.report.model import SubmissionReport
from grader.report.writers import submission_files
from grader.rubric.model import Rubric


def finished_report(out_dir: Path, submission: Submission, rubric: Rubric,
                    seed_override: int | None = None) -> SubmissionReport | None:
    """The saved report of `submission` when it can stand as it is: complete (it is written last
    and atomically, after the observations), graded (an `error` report is cheap to redo and may
    come from a passing problem), and made from the same notebook bytes, rubric and seed."""
    files = submission_files(out_dir, submission.id)
    if submission.notebook is None or not files["observations"].is_file():
        return None
    try:
        report = SubmissionReport.from_dict(json.loads(files["report"].read_text("utf-8")))
        raw = read_notebook_bytes(submission.notebook, rubric.execution.max_notebook_mb)
        notebook_sha256 = hashlib.sha256(raw).hexdigest()
    except (OSError, ValueError, TypeError, KeyError, NotebookUnreadableError):
        return None
    if report.status != "graded" or report.rubric_sha256 != rubric.sha256:
        return None
    # The output name is the same student's only if the report says so (and names the same file).
    if (report.student_id or report.submission) != (submission.student_id or submission.id):
        return None
    if report.source and report.source != submission.source:
        return None
    if report.notebook_sha256 != notebook_sha256:
        return None
    if seed_override is not None and report.seed != seed_override:
        return None
    return report
