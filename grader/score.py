"""Observations + rubric -> report. Pure: no kernel, no student code; used by grade and rescore."""

from __future__ import annotations

import logging
import threading

from grader import __version__
from grader.checks.base import ScoreContext, Verdict
from grader.checks.registry import CHECK_KINDS
from grader.observe.execution import ExecutionReport
from grader.observe.observations import Observations, ProbeRecord
from grader.report.model import CheckResult, SubmissionReport, TaskScore
from grader.rubric.model import CheckSpec, Rubric

log = logging.getLogger(__name__)

UNREADABLE_CHECK = "Not graded: {reason}"
MALFORMED = ("The grader could not judge its observation of this check ({error}); grade the notebook again "
             "(`grader grade`), and report it if it happens again.")

# In the grader's own process torch computes only scoring's small tensors (Part A's oracles, the
# reference D1/D2 runs on 64-128 images), where a second thread costs far more than it gives
# (2,000 tiny conv2d calls: 0.01 s on one thread, 0.1-4 s on two of a busy machine) and makes the
# results depend on the machine's cores. The grader's entry points (grade, check, rescore) ask
# for one thread; scoring inside a student's kernel (`selfcheck`) leaves the kernel's alone.
_ONE_TORCH_THREAD = threading.Event()


def use_one_torch_thread() -> None:
    """Score with one torch thread in this process (the grader's own process, not a kernel)."""
    _ONE_TORCH_THREAD.set()


def _scoring_threads() -> None:
    if _ONE_TORCH_THREAD.is_set():
        import torch

        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)


def score_observations(observations: Observations, rubric: Rubric) -> SubmissionReport:
    """Judge every check of the rubric on the saved observations; every check gets a result. Safe
    to call from several threads at once: what the checks compare with on the reference side is
    computed once per rubric, under its own lock (grader/checks/train_test.py, reference_model.py)."""
    _scoring_threads()
    execution = None if observations.execution is None else ExecutionReport.from_summary(observations.execution)
    if observations.status != "executed" or execution is None:
        results = [_result(check, Verdict.errored(UNREADABLE_CHECK.format(reason=observations.reason)))
                   for check in rubric.checks]
        status = "error"
    else:
        context = ScoreContext(rubric=rubric, execution=execution, definitions=observations.definitions)
        results = [_result(check, judge(check, observations.probes.get(check.id), context))
                   for check in rubric.checks]
        status = "graded"
    tasks = [TaskScore(task, rubric.tasks.get(task, task),
                       round(sum(r.score for r in results if r.task == task), 4),
                       rubric.task_max(task)) for task in rubric.task_ids()]
    return SubmissionReport(
        submission=observations.submission, status=status,
        score=round(sum(r.score for r in results), 4), max_score=rubric.max_score,
        seed=observations.seed, seed_policy=observations.seed_policy, checks=results, tasks=tasks,
        execution=execution, notebook=observations.notebook,
        notebook_sha256=observations.notebook_sha256, rubric=str(rubric.path),
        rubric_sha256=rubric.sha256, grader_version=__version__, reason=observations.reason,
        graded_at=observations.graded_at, student_id=observations.student_id or observations.submission,
        student_name=observations.student_name, source=observations.source, id_rule=observations.id_rule,
        other_versions=list(observations.other_versions), intake_notes=list(observations.intake_notes))


def prepare_scoring(rubric: Rubric) -> threading.Thread:
    """Start computing, in a background thread, what scoring compares with on the reference side
    and that depends on the rubric alone (the reference train() / test() outcomes of D1/D2, the
    reference network's trace and parameter count), so that it is done once per batch while the
    first notebooks run instead of when the first report is scored. Scoring waits for a result
    still being computed and computes what this did not; a failure here is the checks' to report."""

    def work() -> None:
        _lowest_priority()  # idle cores only: never slow down the notebooks it runs beside
        _scoring_threads()
        from grader.checks.train_test import prepare_reference
        from grader.reference_model import reference_trace

        try:
            if rubric.reference is not None:
                reference_trace(rubric.reference)
            prepare_reference(rubric)
        except Exception as error:  # noqa: BLE001 - scoring computes it again and reports the error
            log.debug("preparing the reference side failed: %s", error)

    thread = threading.Thread(target=work, name="prepare-scoring", daemon=True)
    thread.start()
    return thread


def _lowest_priority() -> None:
    """Give this thread (alone: Linux schedules threads apart) the lowest CPU priority."""
    import os

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: it merely runs at normal priority
        pass


def judge(check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict:
    """The check kind's verdict on its observation. An observation the kind cannot read (a file
    edited by hand, or written by another grader version) is that check's `error`, not the batch's."""
    try:
        return CHECK_KINDS[check.kind].evaluate(check, record, context)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        log.warning("check %s: malformed observation (%s: %s)", check.id, type(error).__name__, error)
        return Verdict.errored(MALFORMED.format(error=f"{type(error).__name__}: {error}"))


def _result(check: CheckSpec, verdict: Verdict) -> CheckResult:
    fraction = min(1.0, max(0.0, verdict.fraction))
    return CheckResult(
        id=check.id, task=check.task, title=check.title, status=verdict.status,
        score=round(check.points * fraction, 4), max_score=check.points,
        visibility=check.visibility, message=verdict.message,
        hint=check.hint if verdict.status == "fail" else "",
        expected=verdict.expected, observed=verdict.observed, details=dict(verdict.details))
