"""The pipeline for one submission: plan the probes, run the notebook, save observations, score them.

(Finding the submissions of a batch is grader/grade/submissions.py.)"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grader import __version__
from grader.checks.registry import CHECK_KINDS
from grader.errors import ExecutionLostError, NotebookUnreadableError
from grader.execute.base import ExecutionJob, Executor
from grader.grade.notebook import locate_definitions, read_notebook
from grader.grade.seeds import check_rng, choose_seed
from grader.grade.submissions import Submission, read_notebook_bytes
from grader.observe.observations import Observations, ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.report.model import SubmissionReport
from grader.report.writers import (
    submission_files,
    write_atomic,
    write_executed_notebook,
    write_report,
)
from grader.rubric.model import Rubric
from grader.score import score_observations
from grader.timings import phase

log = logging.getLogger(__name__)

NAME_OPTIONS = ("function", "variable")  # options that name something the notebook defines
INTERNAL_ERROR = "the grader failed on this submission ({error}); see the log, and report it"


def plan_probes(rubric: Rubric, seed: int) -> tuple[tuple[ProbeRequest, ...], dict[str, Any], dict[str, str]]:
    """The probes to run for a rubric and seed, the grader-side inputs of each check, and for each
    check the key of the probe that observes it (checks that plan the same request share one)."""
    requests: list[ProbeRequest] = []
    inputs: dict[str, Any] = {}
    probe_of: dict[str, str] = {}
    by_payload: dict[str, str] = {}
    for check in rubric.checks:
        request, check_inputs = CHECK_KINDS[check.kind].plan(check, check_rng(seed, check.id), rubric)
        if request is None:
            continue
        inputs[check.id] = check_inputs
        payload = json.dumps(request.payload, sort_keys=True)
        if payload not in by_payload:
            by_payload[payload] = request.key
            requests.append(request)
        probe_of[check.id] = by_payload[payload]
    return tuple(requests), inputs, probe_of


def grade_submission(submission: Submission, rubric: Rubric, out_dir: Path, executor: Executor,
                     torch_threads: int, seed_override: int | None = None) -> SubmissionReport:
    """Grade one submission and write its files; never raises for a problem of the submission."""
    files = submission_files(out_dir, submission.id)
    raw, read_problem = _read_bytes(submission, rubric.execution.max_notebook_mb)
    seed = choose_seed(rubric.seed, raw, seed_override)
    base = dict(submission=submission.id, notebook=str(submission.notebook or ""),
                notebook_sha256=hashlib.sha256(raw).hexdigest(), rubric_sha256=rubric.sha256,
                seed=seed, seed_policy="override" if seed_override is not None else rubric.seed.policy,
                grader_version=__version__,
                graded_at=datetime.now(UTC).isoformat(timespec="seconds"), **intake_fields(submission))
    try:
        if read_problem:
            raise NotebookUnreadableError(read_problem)
        notebook = read_notebook(raw)
        observations, executed = _observe(submission, notebook, rubric, executor, torch_threads,
                                          seed, base)
        with phase("write_s"):
            write_executed_notebook(files["notebook"], executed)
    except (NotebookUnreadableError, ExecutionLostError) as error:
        observations = Observations(status="not_run", reason=str(error), **base)
    except Exception as error:  # noqa: BLE001 - one broken submission must not stop the batch
        log.exception("grading %s failed", submission.id)
        observations = Observations(status="not_run", reason=INTERNAL_ERROR.format(error=error), **base)
    with phase("write_s"):
        write_atomic(files["observations"], observations.to_json() + "\n")
    with phase("score_s"):
        report = score_observations(observations, rubric)
    report = _with_files(report, files, out_dir)
    with phase("write_s"):
        write_report(out_dir, report)
    return report


def _observe(submission: Submission, notebook: dict[str, Any], rubric: Rubric, executor: Executor,
             torch_threads: int, seed: int,
             base: dict[str, Any]) -> tuple[Observations, dict[str, Any]]:
    """Run the notebook and its probes; the observations and the executed notebook."""
    requests, inputs, probe_of = plan_probes(rubric, seed)
    job = ExecutionJob(submission_id=submission.id, notebook=notebook, data=rubric.data,
                       limits=rubric.execution, torch_threads=torch_threads, probes=requests)
    result = executor.run(job)
    names = {check.options[key] for check in rubric.checks for key in NAME_OPTIONS
             if isinstance(check.options.get(key), str)}
    if rubric.model is not None and not rubric.model.auto:
        names.add(rubric.model.model_class)
    replies = result.probe_replies
    probes = {check_id: ProbeRecord(inputs=inputs[check_id], status=replies[key].status,
                                    data=replies[key].data, message=replies[key].message,
                                    seconds=replies[key].seconds, probe=key)
              for check_id, key in probe_of.items()}
    observations = Observations(status="executed", execution=result.summary,
                                definitions=locate_definitions(notebook, sorted(names)),
                                probes=probes, **base)
    return observations, result.executed_notebook or notebook


def _read_bytes(submission: Submission, max_mb: float) -> tuple[bytes, str]:
    """The notebook's bytes, or a reason it has none (a link, too big, unreadable)."""
    if submission.notebook is None:
        return b"", submission.problem
    try:
        return read_notebook_bytes(submission.notebook, max_mb), ""
    except NotebookUnreadableError as error:
        return b"", str(error)


def intake_fields(submission: Submission) -> dict[str, Any]:
    """Who handed the submission in, for the observations (and so the report)."""
    return dict(student_id=submission.student_id or submission.id, student_name=submission.student_name,
                source=submission.source, id_rule=submission.id_rule,
                other_versions=list(submission.other_versions), intake_notes=list(submission.notes))


def _with_files(report: SubmissionReport, files: dict[str, Path], out_dir: Path) -> SubmissionReport:
    from dataclasses import replace

    present = {key: str(path.relative_to(out_dir)) for key, path in files.items()
               if key != "report" and path.exists()}
    return replace(report, files=present)
