"""The `grader` command: a thin layer that turns flags into one library call per command."""

from __future__ import annotations

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
STATUS_MARKS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def main() -> None:
    """Grade Exercise 06 (CNN for image classification) notebooks.

    \b
    grader grade SUBMISSIONS --rubric rubrics/ex06.toml --out reports   # a batch
    grader check my_notebook.ipynb                                      # a student's self-check
    grader score reports --rubric rubrics/ex06.toml                     # re-score, no kernels
    grader data digits28 --out data                                     # the students' data file
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

    _setup_logging(verbose, quiet or as_json)
    log = logging.getLogger("grader")
    loaded = _run(lambda: load_rubric(rubric))

    def started(submission) -> None:
        log.info("grading %s ...", submission.id)

    def done(report) -> None:
        seconds = (report.execution or {}).get("seconds", 0.0)
        log.info("graded %s: %g / %g (%s, %.1f s)", report.submission, report.score,
                 report.max_score, report.status, seconds)

    # `kill` (SIGTERM) stops the batch like Ctrl-C: kernels killed, finished reports kept.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = _run(lambda: grade_batch(submissions, loaded, out_dir, jobs=jobs, seed=seed,
                                          on_start=started, on_done=done, resume=resume))
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
               f"({result.jobs} at once, {result.torch_threads} torch thread(s) each). "
               f"Reports: {result.out_dir}/  Gradebook: {result.gradebook}")


@main.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--rubric", type=click.Path(path_type=Path), default=default_rubric_path,
              show_default="rubrics/ex06.toml", help="Rubric TOML file.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the report and executed notebook in this folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def check(notebook: Path, rubric: Path, out_dir: Path | None, as_json: bool) -> None:
    """Self-check one notebook against the public checks, before handing it in."""
    from grader.grade.api import check_notebook

    _setup_logging(0, True)
    report = _run(lambda: check_notebook(notebook, rubric, out_dir))
    if as_json:
        click.echo(report.to_json())
        return
    _print_check(report)


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


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _batch_summary(result) -> dict:
    return {
        "out_dir": str(result.out_dir), "gradebook": str(result.gradebook),
        "seconds": result.seconds, "jobs": result.jobs, "torch_threads": result.torch_threads,
        "resumed": result.resumed, "warnings": list(result.warnings),
        "submissions": [{"submission": r.submission, "status": r.status, "score": r.score,
                         "max_score": r.max_score} for r in result.reports],
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


def _print_check(report) -> None:
    public = report.public_view()
    click.echo(SELF_CHECK_BANNER)
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
    click.echo(f"\nPublic checks: {public.score:g} / {public.max_score:g} points.")


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
