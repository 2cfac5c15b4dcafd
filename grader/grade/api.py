"""The library calls behind the CLI: grade_batch, check_notebook, rescore."""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.execute.base import Executor
from grader.execute.registry import ExecutorSetup, make_executor, open_executor
from grader.execute.sandbox import abort_sandboxes, allow_sandboxes, sandbox_support
from grader.grade.batch_log import batch_log
from grader.grade.parallelism import Parallelism, plan_parallelism, this_machine
from grader.grade.pipeline import grade_submission
from grader.grade.resume import finished_report
from grader.grade.submissions import Submission, discover_submissions, extract_zip, single_submission
from grader.names import printable
from grader.observe.observations import Observations
from grader.report.model import SubmissionReport
from grader.report.writers import (
    GRADEBOOK_IMPORT_NAMES,
    LOG_NAME,
    SUBMISSION_DIR_FILES,
    append_markdown_summary,
    write_feedback_page,
    write_feedback_pages,
    write_gradebook,
    write_gradebook_import,
    write_gradescope,
    write_junit,
    write_report,
    write_summary_page,
)
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric
from grader.score import prepare_scoring, score_observations, use_one_torch_thread
from grader.timings import collecting, phase

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
    resumed: int = 0  # reports kept from an earlier, interrupted run (--resume)
    warnings: tuple[str, ...] = ()  # batch-wide, e.g. that notebooks ran without isolation
    summary_page: Path | None = None
    log_file: Path | None = None
    # Seconds per phase: {"batch": {setup_s before the first notebook, batch_files_s after the
    # last}, "submissions": {id: {kernel_start_s (a kernel started on the spot) or kernel_wait_s (the
    # wait for one started ahead), score_s, write_s, pages_s, total_s}}}.
    timings: dict[str, dict] = field(default_factory=dict)
    parallelism: str = ""  # why `jobs` and `torch_threads` (e.g. what --jobs auto found)
    executor: str = "local"  # what ran the notebooks: local kernels or dask


def _plan(jobs: int | str, rubric: Rubric, submissions: int | None = None) -> Parallelism:
    """Jobs and torch threads for this machine (see grader/grade/parallelism.py)."""
    machine = this_machine()
    return plan_parallelism(jobs, machine.cores, machine.memory_available_mb, rubric.execution.memory_limit_mb,
                            rubric.execution.torch_threads, submissions)


def _as_rubric(rubric: Rubric | str | Path, read_data: bool = True) -> Rubric:
    """The loaded rubric, with its data source checked (and cached) before any notebook runs
    (`read_data=False`: the caller does that with `_read_data`)."""
    loaded = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    if read_data:
        _read_data(loaded)
    return loaded


def _read_data(rubric: Rubric) -> None:
    from grader.data.sources import prepare_data

    prepare_data(rubric.data)


def grade_batch(submissions: str | Path, rubric: Rubric | str | Path, out_dir: str | Path,
                jobs: int | str = 1, seed: int | None = None, executor: Executor | str = "local",
                on_found: Callable[[Sequence[Submission]], None] | None = None,
                on_plan: Callable[[Parallelism], None] | None = None,
                on_start: Callable[[Submission], None] | None = None,
                on_done: Callable[[SubmissionReport], None] | None = None,
                resume: bool = False, ids: str = "auto",
                gradebook_formats: Sequence[str] = (), scheduler: str | None = None) -> BatchResult:
    """Grade every submission in a folder (or .zip) into `out_dir`: a JSON report and feedback
    pages per submission; `grades.csv`, `_summary.html` and `_grader.log` for the batch. Problems
    of single submissions end up in their reports. `on_found` gets the submissions before any runs,
    `on_plan` the jobs and torch threads chosen (jobs: a number, capped at the cores, or "auto":
    chosen from the cores and the memory available per the rubric's memory limit per kernel).

    ids: how file names map to students (auto, moodle, canvas, blackboard, filename; see
    grader.grade.lms). gradebook_formats: also write the gradebook for import into these LMSs
    (moodle, canvas). Output files are named by the grader (grader.names), never by a file name.

    resume: keep the reports an interrupted run already completed for the same notebook, rubric
    and seed, and grade only the rest. On KeyboardInterrupt every running kernel is killed, no
    report is written for an unfinished submission, and the interrupt is raised again.

    executor: "local" (kernels on this machine) or "dask" (a new local Dask cluster of `jobs`
    workers, or the cluster whose scheduler is at `scheduler`); or an Executor object."""
    # The data is read once the first kernels are starting (below); a rubric whose data cannot
    # be read still stops the batch before any notebook runs.
    rubric = _as_rubric(rubric, read_data=False)
    use_one_torch_thread()
    out_dir = Path(out_dir)
    started = time.monotonic()
    # On a shared cluster the workers' isolation is theirs: each report says what it had.
    support = sandbox_support(rubric.execution.sandbox if scheduler is None else "off")
    batch_warnings = support.warnings() if scheduler is None else ()
    for warning in batch_warnings:
        log.warning("WARNING: %s", warning)
    feedback_title = FEEDBACK_TITLE.format(title=rubric.title)
    with tempfile.TemporaryDirectory(prefix="grader-zip-") as unpacked:
        source = Path(submissions)
        if source.is_file() and source.suffix == ".zip":
            source = extract_zip(source, Path(unpacked), rubric.execution.max_notebook_mb)
        found = discover_submissions(source, ids)
        out_dir.mkdir(parents=True, exist_ok=True)
        if on_found:
            on_found(found)

        def grade_one(submission: Submission) -> SubmissionReport:
            if submission.id in kept:
                write_feedback_pages(out_dir, kept[submission.id], feedback_title)
                return kept[submission.id]
            if on_start:
                on_start(submission)
            log.info("grading %s (%s)", submission.id, printable(submission.notebook or submission.problem))
            with collecting() as phases, phase("total_s"):
                report = grade_submission(submission, rubric, out_dir, runner, threads, seed)
                with phase("pages_s"):
                    write_feedback_pages(out_dir, report, feedback_title)
            timings["submissions"][submission.id] = phases
            log.info("graded %s: %g / %g (%s, %.1f s)", report.submission, report.score, report.max_score,
                     report.status, report.seconds)
            if on_done:
                on_done(report)
            return report

        with batch_log(out_dir / LOG_NAME) as log_file:
            kept = {s.id: r for s in found if resume and (r := finished_report(out_dir, s, rubric, seed))}
            plan = _plan(jobs, rubric, len(found) - len(kept))
            threads = plan.torch_threads
            if scheduler is not None:  # a shared cluster: its workers' cores are not ours to count
                threads = rubric.execution.torch_threads or 1
            log.info("grading %d submission(s) from %s with %s: %s", len(found), submissions, rubric.path,
                     plan.reason)
            if on_plan:
                on_plan(plan)
            rules = Counter(s.id_rule for s in found)
            log.info("student ids: %s", ", ".join(f"{n} from {rule} names" for rule, n in sorted(rules.items())))
            for submission in found:
                _log_intake(submission)
            if kept:
                log.info("resuming: %d of %d submission(s) already graded", len(kept), len(found))
            allow_sandboxes()
            timings: dict[str, dict] = {"batch": {"setup_s": round(time.monotonic() - started, 3)},
                                        "submissions": {}}
            with _open_runner(executor, plan.jobs, rubric, scheduler) as setup:
                runner, jobs = setup.executor, setup.slots
                log.info("running notebooks on %s", setup.where)
                _start_kernels_ahead(runner, rubric, threads, found, kept, jobs)
                pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
                try:
                    _read_data(rubric)
                    prepare_scoring(rubric)
                    reports = list(pool.map(grade_one, found))
                except KeyboardInterrupt:
                    # Running kernels die; their submissions get no report.
                    getattr(runner, "abort", abort_sandboxes)()
                    log.warning("interrupted: the running submissions get no report")
                    raise
                finally:
                    pool.shutdown(wait=True, cancel_futures=True)
                    _close_kernels_ahead(runner)
            with collecting() as phases, phase("batch_files_s"):
                gradebook, summary = _write_batch_files(out_dir, reports, rubric)
            timings["batch"].update(phases)
            _write_gradebook_imports(out_dir, reports, rubric, gradebook_formats)
            seconds = round(time.monotonic() - started, 2)
            log.info("batch done in %.1f s: %s, %s", seconds, gradebook, summary)
    return BatchResult(out_dir, reports, gradebook, seconds, jobs, threads, executor=setup.name,
                       resumed=len(kept), warnings=batch_warnings, summary_page=summary, log_file=log_file,
                       timings=timings, parallelism=plan.reason)


def _start_kernels_ahead(runner: Executor, rubric: Rubric, threads: int, found: Sequence[Submission],
                         kept: dict[str, SubmissionReport], jobs: int) -> None:
    """Let an executor that can (local kernels) start a kernel per submission ahead of need,
    `jobs` at most waiting at a time, while the first notebooks run."""
    expect = getattr(runner, "expect", None)
    count = sum(1 for s in found if s.notebook is not None and s.id not in kept)
    if expect is not None and count:
        expect(rubric.execution, rubric.data, threads, count, ahead=jobs)


def _close_kernels_ahead(runner: Executor) -> None:
    close = getattr(runner, "close", None)
    if close is not None:
        close()


@contextmanager
def _open_runner(executor: Executor | str, jobs: int, rubric: Rubric,
                 scheduler: str | None) -> Iterator[ExecutorSetup]:
    if isinstance(executor, str):
        with open_executor(executor, jobs, rubric.data, scheduler) as setup:
            yield setup
    else:
        name = getattr(executor, "name", type(executor).__name__)
        yield ExecutorSetup(executor, jobs, name, name)


def _log_intake(submission: Submission) -> None:
    """Say in the log how a submission was mapped to a student, and what to look at."""
    if submission.student_id != submission.id or submission.student_name:
        log.info("%s: student %s%s from %s", submission.id, printable(submission.student_id),
                 f" ({printable(submission.student_name)})" if submission.student_name else "",
                 printable(submission.source))
    for note in submission.notes:
        log.warning("%s: %s", submission.id, note)


def _write_gradebook_imports(out_dir: Path, reports: list[SubmissionReport], rubric: Rubric,
                             formats: Sequence[str]) -> None:
    for lms in formats:
        path, left_out = write_gradebook_import(out_dir, reports, lms, rubric.title)
        log.info("gradebook for %s: %s", lms, path)
        if left_out:
            log.warning("WARNING: %d submission(s) not in %s (no %s id; see grades.csv): %s",
                        len(left_out), path.name, lms, ", ".join(left_out))


def _write_batch_files(out_dir: Path, reports: list[SubmissionReport], rubric: Rubric) -> tuple[Path, Path]:
    return (write_gradebook(out_dir, reports),
            write_summary_page(out_dir, reports, SUMMARY_TITLE.format(title=rubric.title)))


@dataclass(frozen=True)
class CheckOutputs:
    """The files `check_notebook` writes besides the report in `out_dir`; None skips one."""

    html: Path | None = None  # the feedback page (the student's copy, or the instructor's with hidden checks)
    junit: Path | None = None  # JUnit XML, a test case per check (CI)
    gradescope: Path | None = None  # Gradescope's results.json
    markdown_summary: Path | None = None  # appended to, never replaced (GitHub's $GITHUB_STEP_SUMMARY)

    def files(self) -> list[Path]:
        """The files written whole (the Markdown summary is appended to)."""
        return [path for path in (self.html, self.junit, self.gradescope) if path is not None]


def check_notebook(notebook: str | Path, rubric: Rubric | str | Path | None = None,
                   out_dir: str | Path | None = None, seed: int | None = None,
                   include_hidden: bool = False, outputs: CheckOutputs | None = None) -> SubmissionReport:
    """A student's self-check: the public checks only, on one notebook, and the `outputs` files.
    `include_hidden` grades every check of the rubric instead (an autograder such as Gradescope's,
    not a student). `grader check` is this call."""
    from grader.paths import default_rubric_path

    full = _as_rubric(rubric if rubric is not None else default_rubric_path(), read_data=False)
    use_one_torch_thread()
    public = full if include_hidden else full.public_only()
    path = Path(notebook)
    threads = _plan(1, public).torch_threads
    with tempfile.TemporaryDirectory(prefix="grader-check-") as scratch:
        target = Path(out_dir) if out_dir is not None else Path(scratch)
        submission = single_submission(path)
        runner = make_executor("local")
        _start_kernels_ahead(runner, public, threads, [submission], {}, 1)  # while the data is read
        try:
            _read_data(public)
            prepare_scoring(public)
            report = grade_submission(submission, public, target, runner, threads, seed)
        finally:
            _close_kernels_ahead(runner)
    write_check_outputs(report, outputs or CheckOutputs(), f"grader check {path.name}", include_hidden)
    return report


def write_check_outputs(report: SubmissionReport, outputs: CheckOutputs, title: str, include_hidden: bool) -> None:
    """The self-check's files: what a student may see, unless the hidden checks were graded too."""
    if outputs.html is not None:
        write_feedback_page(outputs.html, report, "instructor" if include_hidden else "student", title)
    if outputs.junit is not None:
        write_junit(outputs.junit, report)
    if outputs.gradescope is not None:
        write_gradescope(outputs.gradescope, report)
    if outputs.markdown_summary is not None:
        append_markdown_summary(outputs.markdown_summary, report, title, public_only=not include_hidden)


def rescore(reports_dir: str | Path, rubric: Rubric | str | Path) -> BatchResult:
    """Score saved observations again with a (possibly edited) rubric; starts no kernel."""
    from grader.errors import ObservationsError

    rubric = _as_rubric(rubric)
    use_one_torch_thread()
    reports_dir = Path(reports_dir)
    started = time.monotonic()
    paths = sorted(reports_dir.glob(f"*/{SUBMISSION_DIR_FILES['observations']}"))
    if not paths:
        raise ObservationsError(NO_OBSERVATIONS.format(path=reports_dir))
    reports = []
    for path in paths:
        observations = Observations.from_json(path.read_text("utf-8"), path)
        # The folder's name is the output name the grader chose; it names the rewritten files.
        report = score_observations(replace(observations, submission=path.parent.name), rubric)
        report = _keep_files(report, reports_dir)
        write_report(reports_dir, report)
        write_feedback_pages(reports_dir, report, FEEDBACK_TITLE.format(title=rubric.title))
        reports.append(report)
    gradebook, summary = _write_batch_files(reports_dir, reports, rubric)
    # The LMS gradebooks the batch wrote are written again, so none is left with the old scores.
    _write_gradebook_imports(reports_dir, reports, rubric, [lms for lms, name in GRADEBOOK_IMPORT_NAMES.items()
                                                            if (reports_dir / name).is_file()])
    return BatchResult(reports_dir, reports, gradebook, round(time.monotonic() - started, 2), 0, 0,
                       summary_page=summary)


def _keep_files(report: SubmissionReport, out_dir: Path) -> SubmissionReport:
    folder = out_dir / report.submission
    files = {key: f"{report.submission}/{name}" for key, name in SUBMISSION_DIR_FILES.items()
             if (folder / name).exists()}
    return replace(report, files=files)
