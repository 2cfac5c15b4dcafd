"""Observations + rubric -> report. Pure: no kernel, no student code; used by grade and rescore."""

from __future__ import annotations

import threading
from dataclasses import asdict

from grader import __version__
from grader.checks.base import ScoreContext, Verdict
from grader.checks.registry import CHECK_KINDS
from grader.execute.base import ExecutionSummary
from grader.observe.observations import Observations
from grader.report.model import CheckResult, SubmissionReport, TaskScore
from grader.rubric.model import CheckSpec, Rubric

UNREADABLE_CHECK = "Not graded: {reason}"

# Reference computations (D1/D2, shapes) seed torch's global RNG; scoring one submission at a
# time keeps them reproducible when submissions are graded in parallel threads.
_SCORING = threading.Lock()


def score_observations(observations: Observations, rubric: Rubric) -> SubmissionReport:
    """Judge every check of the rubric on the saved observations; every check gets a result."""
    with _SCORING:
        return _score(observations, rubric)


def _score(observations: Observations, rubric: Rubric) -> SubmissionReport:
    if observations.status != "executed" or observations.execution is None:
        results = [_result(check, Verdict.errored(UNREADABLE_CHECK.format(reason=observations.reason)))
                   for check in rubric.checks]
        status = "error"
    else:
        context = ScoreContext(rubric=rubric, execution=observations.execution,
                               definitions=observations.definitions)
        results = [_result(check, _evaluate(check, observations, context)) for check in rubric.checks]
        status = "graded"
    tasks = [TaskScore(task, rubric.tasks.get(task, task),
                       round(sum(r.score for r in results if r.task == task), 4),
                       rubric.task_max(task)) for task in rubric.task_ids()]
    return SubmissionReport(
        submission=observations.submission, status=status,
        score=round(sum(r.score for r in results), 4), max_score=rubric.max_score,
        seed=observations.seed, seed_policy=observations.seed_policy, checks=results, tasks=tasks,
        execution=_execution_dict(observations.execution), notebook=observations.notebook,
        notebook_sha256=observations.notebook_sha256, rubric=str(rubric.path),
        rubric_sha256=rubric.sha256, grader_version=__version__, reason=observations.reason,
        graded_at=observations.graded_at, student_id=observations.student_id or observations.submission,
        student_name=observations.student_name, source=observations.source, id_rule=observations.id_rule,
        other_versions=list(observations.other_versions), intake_notes=list(observations.intake_notes))


def _evaluate(check: CheckSpec, observations: Observations, context: ScoreContext) -> Verdict:
    record = observations.probes.get(check.id)
    return CHECK_KINDS[check.kind].evaluate(check, record, context)


def _result(check: CheckSpec, verdict: Verdict) -> CheckResult:
    fraction = min(1.0, max(0.0, verdict.fraction))
    details = dict(verdict.details)
    if verdict.status == "fail" and check.hint:
        details.setdefault("hint", check.hint)  # reports show it apart from the finding
    return CheckResult(
        id=check.id, task=check.task, title=check.title, status=verdict.status,
        score=round(check.points * fraction, 4), max_score=check.points,
        visibility=check.visibility, message=verdict.message, details=details)


def _execution_dict(execution: ExecutionSummary | None) -> dict | None:
    """The report's `execution` block: the summary plus the failed / timed-out cell lists."""
    if execution is None:
        return None
    summary = asdict(execution)
    cells = summary.pop("cells")
    summary["cells_total"] = len(cells)
    summary["cells_ok"] = sum(1 for c in cells if c["status"] == "ok")
    summary["failed_cells"] = [_cell_entry(c) for c in cells if c["status"] == "error"]
    summary["timed_out_cells"] = [_cell_entry(c) for c in cells if c["status"] == "timeout"]
    summary["not_run_cells"] = [c["index"] for c in cells if c["status"] == "not_run"]
    summary["output_capped_cells"] = [c["index"] for c in cells if c["dropped_output_bytes"]]
    return summary


def _cell_entry(cell: dict) -> dict:
    return {"index": cell["index"], "error": cell["error"], "message": cell["message"],
            "source_excerpt": cell["source_excerpt"], "seconds": cell["seconds"]}
