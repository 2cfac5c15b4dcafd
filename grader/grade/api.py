"""The library calls behind the CLI: grade_batch, check_notebook, rescore."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader.execute.base import Executor
from grader.execute.registry import ExecutorSetup, make_executor, open_executor
from grader.execute.sandbox import allow_sandboxes, sandbox_support
from grader.grade.batch_log import batch_log
from grader.grade.resume import finished_report
from grader.grade.submission import grade_submission
from grader.grade.submissions import Submission, discover_submissions, extract_zip
from grader.observe.observations import Observations
from grader.report.model import SubmissionReport
from grader.report.writers import (
    LOG_NAME,
    SUBMISSION_DIR_FILES,
    write_feedback_pages,
    write_gradebook,
    write_report,
    write_summary_page,
)
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric
from grader.score import score_observations

log = logging.getLogger(__name__)

NO_OBSERVATIONS = ("No saved observations under {path}: expected <id>/observations.json files written "
                   "by `grader grade`. Pass the --out folder of a graded batch.")


FEEDBACK_TITLE = "{title}: feedback"
SUMMARY_TITLE = "{title}: batch summary"


@dataclass(frozen=True)
class BatchResult:
    out_dir: Path
    reports: list[SubmissionReport]
    gradebook: Path
    seconds: float
    jobs: int
    torch_threads: int
    executor: str = "local"
    resumed: int = 0  # reports kept from an earlier, interrupted run (--resume)
    warnings: tuple[str, ...] = ()  # batch-wide, e.g. that notebooks ran without isolation
    summary_page: Path | None = None
    log_file: Path | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_parallelism(jobs: int, rubric: Rubric, cores: int | None = None) -> tuple[int, int]:
    """(jobs, torch threads per kernel) such that jobs x threads <= cores."""
    cores = cores or available_cores()
    if rubric.execution.torch_threads is not None:
        threads = min(rubric.execution.torch_threads, cores)
        return max(1, min(jobs, cores // threads)), threads
    jobs = max(1, min(jobs, cores))
    return jobs, max(1, cores // jobs)


def _as_rubric(rubric: Rubric | str | Path) -> Rubric:
    """The loaded rubric, with its data source checked (and cached) before any notebook runs."""
    from grader.data.sources import data_arrays

    loaded = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    data_arrays(loaded.data)
    return loaded


def grade_batch(submissions: str | Path, rubric: Rubric | str | Path, out_dir: str | Path,
                jobs: int = 1, seed: int | None = None, executor: Executor | str = "local",
                on_found: Callable[[Sequence[Submission]], None] | None = None,
                on_start: Callable[[Submission], None] | None = None,
                on_done: Callable[[SubmissionReport], None] | None = None,
                resume: bool = False, scheduler: str | None = None) -> BatchResult:
    """Grade every submission in a folder (or .zip) into `out_dir`: a JSON report and feedback
    pages per submission; `grades.csv`, `_summary.html` and `_grader.log` for the batch. Problems
    of single submissions end up in their reports. `on_found` gets the submissions before any runs.

    resume: keep the reports an interrupted run already completed for the same notebook, rubric
    and seed, and grade only the rest. On KeyboardInterrupt every running kernel is killed, no
    report is written for an unfinished submission, and the interrupt is raised again.

    executor: "local" (kernels on this machine) or "dask" (a new local Dask cluster of `jobs`
    workers, or the cluster whose scheduler is at `scheduler`); or an Executor object."""
    rubric = _as_rubric(rubric)
    out_dir = Path(out_dir)
    started = time.monotonic()
    jobs, threads = plan_parallelism(jobs, rubric)
    if scheduler is not None:  # a shared cluster: its workers' cores are not ours to count
        threads = rubric.execution.torch_threads or 1
    # On a shared cluster the workers' isolation is theirs: each report says what it had.
    support = sandbox_support(rubric.execution.sandbox if scheduler is None else "off")
    batch_warnings = support.warnings() if scheduler is None else ()
    for warning in batch_warnings:
        log.warning("WARNING: %s", warning)
    feedback_title = FEEDBACK_TITLE.format(title=rubric.title)
    with tempfile.TemporaryDirectory(prefix="grader-zip-") as unpacked:
        source = Path(submissions)
        if source.is_file() and source.suffix == ".zip":
            source = extract_zip(source, Path(unpacked))
        found = discover_submissions(source)
        out_dir.mkdir(parents=True, exist_ok=True)
        if on_found:
            on_found(found)

        def grade_one(submission: Submission) -> SubmissionReport:
            if submission.id in kept:
                write_feedback_pages(out_dir, kept[submission.id], feedback_title)
                return kept[submission.id]
            if on_start:
                on_start(submission)
            log.info("grading %s (%s)", submission.id, submission.notebook or submission.problem)
            report = grade_submission(submission, rubric, out_dir, runner, threads, seed)
            write_feedback_pages(out_dir, report, feedback_title)
            log.info("graded %s: %g / %g (%s, %.1f s)", report.submission, report.score, report.max_score,
                     report.status, (report.execution or {}).get("seconds", 0.0))
            if on_done:
                on_done(report)
            return report

        with batch_log(out_dir / LOG_NAME) as log_file:
            log.info("grading %d submission(s) from %s with %s: %d at once, %d torch thread(s) each",
                     len(found), submissions, rubric.path, jobs, threads)
            kept = {s.id: r for s in found if resume and (r := finished_report(out_dir, s, rubric, seed))}
            if kept:
                log.info("resuming: %d of %d submission(s) already graded", len(kept), len(found))
            allow_sandboxes()
            with _open_runner(executor, jobs, rubric, scheduler) as setup:
                runner, jobs = setup.executor, setup.slots
                log.info("running notebooks on %s", setup.where)
                pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
                try:
                    reports = list(pool.map(grade_one, found))
                except KeyboardInterrupt:
                    runner.abort()  # running kernels die; their submissions get no report
                    log.warning("interrupted: the running submissions get no report")
                    raise
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
            gradebook, summary = _write_batch_files(out_dir, reports, rubric)
            seconds = round(time.monotonic() - started, 2)
            log.info("batch done in %.1f s: %s, %s", seconds, gradebook, summary)
    return BatchResult(out_dir, reports, gradebook, seconds, jobs, threads, executor=runner.name,
                       resumed=len(kept), warnings=batch_warnings, summary_page=summary,
                       log_file=log_file)


@contextmanager
def _open_runner(executor: Executor | str, jobs: int, rubric: Rubric,
                 scheduler: str | None) -> Iterator[ExecutorSetup]:
    if isinstance(executor, str):
        with open_executor(executor, jobs, rubric.data, scheduler) as setup:
            yield setup
    else:
        yield ExecutorSetup(executor, jobs, getattr(executor, "name", type(executor).__name__))


def _write_batch_files(out_dir: Path, reports: list[SubmissionReport], rubric: Rubric) -> tuple[Path, Path]:
    return (write_gradebook(out_dir, reports),
            write_summary_page(out_dir, reports, SUMMARY_TITLE.format(title=rubric.title)))


def check_notebook(notebook: str | Path, rubric: Rubric | str | Path | None = None,
                   out_dir: str | Path | None = None, seed: int | None = None,
                   include_hidden: bool = False) -> SubmissionReport:
    """A student's self-check: the public checks only, on one notebook. `include_hidden` grades
    every check of the rubric instead (an autograder such as Gradescope's, not a student)."""
    from grader.paths import default_rubric_path

    full = _as_rubric(rubric if rubric is not None else default_rubric_path())
    public = full if include_hidden else full.public_only()
    path = Path(notebook)
    _, threads = plan_parallelism(1, public)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as scratch:
        target = Path(out_dir) if out_dir is not None else Path(scratch)
        submission = Submission(path.stem, path if path.exists() else None,
                                "" if path.exists() else f"the file {path} does not exist")
        report = grade_submission(submission, public, target, make_executor("local"), threads, seed)
    return report


def rescore(reports_dir: str | Path, rubric: Rubric | str | Path) -> BatchResult:
    """Score saved observations again with a (possibly edited) rubric; starts no kernel."""
    from grader.errors import ObservationsError

    rubric = _as_rubric(rubric)
    reports_dir = Path(reports_dir)
    started = time.monotonic()
    paths = sorted(reports_dir.glob(f"*/{SUBMISSION_DIR_FILES['observations']}"))
    if not paths:
        raise ObservationsError(NO_OBSERVATIONS.format(path=reports_dir))
    reports = []
    for path in paths:
        observations = Observations.from_json(path.read_text("utf-8"), path)
        report = score_observations(observations, rubric)
        report = _keep_files(report, reports_dir)
        write_report(reports_dir, report)
        write_feedback_pages(reports_dir, report, FEEDBACK_TITLE.format(title=rubric.title))
        reports.append(report)
    gradebook, summary = _write_batch_files(reports_dir, reports, rubric)
    return BatchResult(reports_dir, reports, gradebook, round(time.monotonic() - started, 2), 0, 0,
                       summary_page=summary)


def _keep_files(report: SubmissionReport, out_dir: Path) -> SubmissionReport:
    from dataclasses import replace

    folder = out_dir / report.submission
    files = {key: f"{report.submission}/{name}" for key, name in SUBMISSION_DIR_FILES.items()
             if (folder / name).exists()}
    return replace(report, files=files)
